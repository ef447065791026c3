"""Twitter automation: each landed raw file processed exactly once (gold follows by itself).

Bronze's ledger of loaded files plays the part of the Glue job bookmark and the Spark checkpoint
of the pipelines this replaces (README, Origins); the run_key of each request is the file's key,
so a repeated tick never processes a file twice. Sensors decide, assets fetch: no sensor reads a
payload.
"""


from lakehouse.defs.raw_files import files_request, raw_file_sensor, raw_landed_keys
from lakehouse.defs.twitter.assets import RAW_STREAM
from lakehouse.defs.twitter.jobs import twitter_files_job
from lakehouse.load.twitter import BRONZE
from lakehouse.sources.twitter import RAW_PREFIXES, STREAM_PREFIX

MAX_RUNS_PER_TICK = 100

twitter_raw_file_sensor = raw_file_sensor(
    name="twitter_raw_file_sensor", job=twitter_files_job, ledger=BRONZE,
    list_landed=raw_landed_keys(RAW_PREFIXES),
    request_for=files_request(["twitter_bronze", "twitter_silver"]),
    files_per_run=1, max_runs_per_tick=MAX_RUNS_PER_TICK, landed_outside={STREAM_PREFIX: RAW_STREAM},
    description="One run per landed raw Twitter file (search page or stream batch) that "
                "bronze's ledger does not hold yet (late and out-of-order files too), into "
                "bronze and silver, exactly once.",
)
