"""Telegram automation: poll the Bot API, load new raw files, rebuild the days they touched.

Sensors decide and assets fetch: no sensor reads a payload; the poll sensor only peeks (one
update, asked with the landed offset, so it confirms nothing new).
"""

import time
from datetime import date

import dagster as dg

from lakehouse import settings
from lakehouse.defs.raw_files import files_request, raw_file_sensor, raw_landed_keys
from lakehouse.defs.telegram.assets import (
    BRONZE_UPDATES,
    RAW_WEBHOOK,
    SILVER_MESSAGES,
    partition_days,
)
from lakehouse.defs.telegram.jobs import (
    telegram_bronze_job,
    telegram_daily_etl_job,
    telegram_poll_job,
)
from lakehouse.lake.resource import LakeResource
from lakehouse.load.telegram import BRONZE
from lakehouse.sources.telegram import TelegramResource
from lakehouse.sources.telegram_landing import RAW_PREFIXES, WEBHOOK_PREFIX, peek_pending_update

POLL_INTERVAL_SECONDS = 60
RETRY_WINDOW_SECONDS = 600
MAX_FILES_PER_RUN = 500
MAX_GAP_DAYS = 7  # touched days closer than this are rebuilt in one run


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
                  dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]), limit=1)
    return bool(active)


telegram_raw_file_sensor = raw_file_sensor(
    name="telegram_raw_file_sensor", job=telegram_bronze_job, ledger=BRONZE,
    list_landed=raw_landed_keys(RAW_PREFIXES), request_for=files_request(["telegram_bronze"]),
    files_per_run=MAX_FILES_PER_RUN, landed_outside={WEBHOOK_PREFIX: RAW_WEBHOOK},
    description="Loads every landed raw Telegram file that bronze's ledger does not hold yet "
                "(late and out-of-order files too), each exactly once, in batches of up to "
                f"{MAX_FILES_PER_RUN} files per run.",
)


@dg.asset_sensor(asset_key=BRONZE_UPDATES, job=telegram_daily_etl_job,
                 default_status=dg.DefaultSensorStatus.RUNNING,
                 description="After bronze changes, rebuilds the silver days it touched and the "
                             "Telegram gold models: one run per block of nearby days.")
def telegram_silver_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    materialization = asset_event.asset_materialization
    dates_value = materialization.metadata.get("dates") if materialization else None
    first, last = (d.isoformat() for d in partition_days())
    # Days outside the partitions (bronze loaded under an earlier TELEGRAM_PARTITIONS_START)
    # cannot be asked for: a range reaching past them would fail the whole run.
    dates = sorted(d for d in (dates_value.value if dates_value is not None else [])
                   if first <= d <= last)
    if not dates:
        yield dg.SkipReason("the bronze load touched no day")
        return
    dates = _not_rebuilt_since(context.instance, dates, asset_event.timestamp)
    if not dates:
        # The days were rebuilt after this load already (`make demo`, a backfill): no run.
        yield dg.SkipReason("silver already holds every day this bronze load touched")
        return
    # One run per block of nearby touched days (silver has a single-run backfill policy): an
    # edit of a years-old message rebuilds its day, not every day since.
    for start, end in day_blocks(dates, MAX_GAP_DAYS):
        yield dg.RunRequest(
            run_key=f"telegram-silver:{asset_event.run_id}:{start}..{end}",
            tags={"dagster/asset_partition_range_start": start,
                  "dagster/asset_partition_range_end": end},
        )


def _not_rebuilt_since(instance: dg.DagsterInstance, days: list[str],
                       since: float) -> list[str]:
    """The ``days`` whose silver partition has not been materialized after ``since``."""
    rebuilt = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=SILVER_MESSAGES, asset_partitions=days,
                              after_timestamp=since), limit=len(days) * 4).records
    done = {record.partition_key for record in rebuilt}
    return [day for day in days if day not in done]


def day_blocks(days: list[str], max_gap: int) -> list[tuple[str, str]]:
    """Sorted ISO days as (first, last) ranges, days at most ``max_gap`` apart sharing one."""
    blocks: list[tuple[str, str]] = []
    for day in days:
        if blocks and (date.fromisoformat(day) - date.fromisoformat(blocks[-1][1])).days <= max_gap:
            blocks[-1] = (blocks[-1][0], day)
        else:
            blocks.append((day, day))
    return blocks
