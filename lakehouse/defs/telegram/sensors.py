"""Telegram automation: poll the Bot API, load new raw files, rebuild the days they touched.

Sensors decide and assets fetch: no sensor reads a payload; the poll sensor only peeks (one
update, asked with the landed offset, so it confirms nothing new).
"""

import time
from collections.abc import Mapping
from datetime import date

import dagster as dg

from lakehouse import settings
from lakehouse.defs.raw_files import files_request, raw_file_sensor
from lakehouse.defs.telegram.assets import (
    BRONZE_UPDATES,
    RAW_WEBHOOK,
    SILVER_MESSAGES,
    message_days,
)
from lakehouse.defs.telegram.jobs import (
    telegram_bronze_job,
    telegram_daily_etl_job,
    telegram_poll_job,
)
from lakehouse.lake.location import Lake
from lakehouse.lake.rawfiles import list_raw_keys
from lakehouse.lake.resource import LakeResource
from lakehouse.load.telegram import BRONZE, bronze_days
from lakehouse.sources.telegram import TelegramResource
from lakehouse.sources.telegram_landing import (
    GETUPDATES_PREFIX,
    RAW_PREFIXES,
    WEBHOOK_PREFIX,
    peek_pending_update,
)

POLL_INTERVAL_SECONDS = 60
RETRY_WINDOW_SECONDS = 600
MAX_FILES_PER_RUN = 500
MAX_LOADS_PER_TICK = 200  # bronze loads read per tick; the rest on the next ones
REBUILDS_READ = 1000  # newest silver materializations read to tell what was rebuilt


@dg.sensor(job=telegram_poll_job, minimum_interval_seconds=POLL_INTERVAL_SECONDS,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Every minute, asks Telegram for one pending update (confirming only what "
                       "has landed) and starts a getUpdates poll only when there is one; off "
                       "when TELEGRAM_MODE=webhook (polling and a webhook exclude each other).")
def telegram_poll_sensor(context: dg.SensorEvaluationContext, lake: LakeResource,
                         telegram: TelegramResource) -> dg.SensorResult | dg.SkipReason:
    if settings.telegram_mode() == "webhook":
        return dg.SkipReason("TELEGRAM_MODE=webhook: updates arrive through the webhook")
    if _poll_run_active(context.instance):
        return dg.SkipReason("a poll run is already queued or running")
    first = peek_pending_update(telegram.updates_source(), lake.lake())
    if first is None:
        return dg.SkipReason("no pending updates at Telegram")
    # The data's identity, plus a retry window: a run that failed before landing anything is
    # asked again after RETRY_WINDOW_SECONDS, not every minute.
    window = int(time.time()) // RETRY_WINDOW_SECONDS
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"telegram-poll-{first}-{window}")])


def _poll_run_active(instance: dg.DagsterInstance) -> bool:
    active = instance.get_runs(dg.RunsFilter(
        job_name=telegram_poll_job.name,
        statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
                  dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
                  dg.DagsterRunStatus.CANCELING]), limit=1)
    return bool(active)


def landed_not_polled(context: dg.SensorEvaluationContext, lake: Lake,
                      since: date | None) -> list[str]:
    """The landed raw keys the raw-file sensor may load: all of them, except getUpdates answers
    while a poll run is queued or running, since that run loads the answers it lands.

    Asked before and after the listing (the ledger is read after both): an answer listed here
    was landed either by a poll run seen in flight (left to it), or by one that had ended by the
    second look, whose load the ledger then shows. An answer of a poll run that failed before
    loading it is taken on the first tick with no poll run in flight."""
    polling = _poll_run_active(context.instance)
    keys = list_raw_keys(lake, RAW_PREFIXES, since)
    if polling or _poll_run_active(context.instance):
        return [key for key in keys if not key.startswith(GETUPDATES_PREFIX + "/")]
    return keys


telegram_raw_file_sensor = raw_file_sensor(
    name="telegram_raw_file_sensor", job=telegram_bronze_job, ledger=BRONZE,
    list_landed=landed_not_polled, request_for=files_request(["telegram_bronze"]),
    files_per_run=MAX_FILES_PER_RUN, landed_outside={WEBHOOK_PREFIX: RAW_WEBHOOK},
    description="Loads every landed raw Telegram file that bronze's ledger does not hold yet "
                "(late and out-of-order files too), each exactly once, in batches of up to "
                f"{MAX_FILES_PER_RUN} files per run; getUpdates answers are left to the poll "
                "run that landed them while one is in flight.",
)


@dg.sensor(job=telegram_daily_etl_job, default_status=dg.DefaultSensorStatus.RUNNING,
           description="After bronze loads, adds a silver partition for each new day they "
                       "touched and rebuilds the touched days silver has not rebuilt since; "
                       "the Telegram gold models follow by themselves.")
def telegram_silver_sensor(context: dg.SensorEvaluationContext,
                           lake: LakeResource) -> dg.SensorResult:
    instance = context.instance
    # Every bronze load since the last tick, oldest first (an asset sensor would see only the
    # newest one: a second load finishing before the tick would lose its days).
    loads = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=BRONZE_UPDATES,
                              after_storage_id=int(context.cursor) if context.cursor else None),
        limit=MAX_LOADS_PER_TICK, ascending=True).records
    if not loads:
        return dg.SensorResult(skip_reason="no bronze load since the last tick")
    cursor = str(loads[-1].storage_id)
    touched: dict[str, dg.EventLogRecord] = {}  # day -> the newest load that touched it
    for load in loads:
        dates = load.asset_materialization.metadata.get("dates") if load.asset_materialization \
            else None
        for day in dates.value if dates is not None else []:
            touched[day] = load
    if not touched:
        return dg.SensorResult(skip_reason="the bronze loads touched no day", cursor=cursor)
    known = list(instance.get_dynamic_partitions(message_days.name))
    # No partition yet while bronze holds days (an instance upgraded from calendar partitions,
    # or a new one over a loaded lake): every day bronze holds becomes one, from its Delta log.
    held = bronze_days(lake.lake()) if not known else []
    new = sorted((set(touched) | set(held)) - set(known))
    # A day silver rebuilt after the load (`make demo`, a backfill, an earlier tick's run) is
    # not asked again.
    todo = not_rebuilt_since(instance, touched)
    # One run per stretch of touched days adjacent in the partitions' order (silver has a
    # single-run backfill policy): an edit of a years-old message rebuilds its own day only.
    requests = [
        dg.RunRequest(run_key=f"telegram-silver:{cursor}:{first}..{last}",
                      tags={"dagster/asset_partition_range_start": first,
                            "dagster/asset_partition_range_end": last})
        for first, last in key_blocks([*known, *new], todo)
    ]
    return dg.SensorResult(
        run_requests=requests, cursor=cursor,
        dynamic_partitions_requests=[message_days.build_add_request(new)] if new else [],
        skip_reason=None if requests else "silver already holds every day these loads touched")


def not_rebuilt_since(instance: dg.DagsterInstance,
                      loads: Mapping[str, dg.EventLogRecord]) -> set[str]:
    """The days of ``loads`` (day -> the newest bronze load that touched it) that no silver run
    started after that load has rebuilt: a run started before the load may have read bronze
    without the load's rows, even when it finished after it."""
    if not loads:
        return set()
    rebuilds = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=SILVER_MESSAGES, asset_partitions=sorted(loads),
                              after_storage_id=min(load.storage_id for load in loads.values())),
        limit=REBUILDS_READ, ascending=False).records
    run_starts: dict[str, float] = {}
    rebuilt_from: dict[str, float] = {}  # day -> start of the latest run that rebuilt it
    for rebuild in rebuilds:
        if rebuild.run_id not in run_starts:
            run = instance.get_run_record_by_id(rebuild.run_id) if rebuild.run_id else None
            run_starts[rebuild.run_id] = (run.start_time if run and run.start_time
                                          else rebuild.timestamp)  # runless: when reported
        day = rebuild.partition_key or ""
        rebuilt_from[day] = max(rebuilt_from.get(day, 0.0), run_starts[rebuild.run_id])
    return {day for day, load in loads.items() if rebuilt_from.get(day, 0.0) <= load.timestamp}


def key_blocks(keys: list[str], wanted: set[str]) -> list[tuple[str, str]]:
    """The ``wanted`` keys as (first, last) ranges of keys adjacent in ``keys``' order."""
    blocks: list[tuple[str, str]] = []
    inside = False
    for key in keys:
        if key not in wanted:
            inside = False
        elif inside:
            blocks[-1] = (blocks[-1][0], key)
        else:
            blocks.append((key, key))
            inside = True
    return blocks
