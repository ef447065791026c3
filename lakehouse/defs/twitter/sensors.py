"""Twitter automation: each newly landed raw file processed exactly once, then gold rebuilt.

The cursor (the last raw key seen per landing prefix) plays the part of the Glue bookmark and
the Spark checkpoint of the seeds; the run_key of each request is the file's key, so even a
repeated tick with a stale cursor never processes a file twice. Sensors decide, assets fetch:
no sensor reads a payload.
"""

import json

import dagster as dg

from lakehouse.defs.twitter.assets import SILVER_SENTIMENT
from lakehouse.defs.twitter.jobs import twitter_files_job, twitter_gold_job
from lakehouse.lake.resource import LakeResource
from lakehouse.sources.twitter import RAW_PREFIXES

MAX_FILES_PER_TICK = 100


def files_run_request(key: str) -> dg.RunRequest:
    config = {"config": {"files": [key]}}
    return dg.RunRequest(
        run_key=key,
        run_config=dg.RunConfig(ops={"twitter_bronze": config, "twitter_silver": config}),
        tags={"lakehouse/raw_file": key},
    )


@dg.sensor(job=twitter_files_job, minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="One run per newly landed raw Twitter file (search page or stream "
                       "batch), into bronze and silver, exactly once.")
def twitter_raw_file_sensor(context: dg.SensorEvaluationContext,
                            lake: LakeResource) -> dg.SensorResult:
    cursor: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    requests = []
    for prefix, keys in lake.lake().new_raw_keys_by_prefix(RAW_PREFIXES, cursor).items():
        taken = keys[:MAX_FILES_PER_TICK]
        if taken:
            cursor[prefix] = taken[-1]
            requests.extend(files_run_request(k) for k in taken)
    if not requests:
        return dg.SensorResult(skip_reason="no new raw Twitter files")
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor, sort_keys=True))


@dg.asset_sensor(asset_key=SILVER_SENTIMENT, job=twitter_gold_job,
                 default_status=dg.DefaultSensorStatus.RUNNING,
                 description="After silver tweets change, rebuilds the Twitter gold models once "
                             "(several batches landing between ticks share one rebuild).")
def twitter_gold_sensor(context: dg.SensorEvaluationContext,
                        asset_event: dg.EventLogEntry) -> dg.RunRequest:
    return dg.RunRequest(run_key=f"twitter-gold:{asset_event.run_id}")
