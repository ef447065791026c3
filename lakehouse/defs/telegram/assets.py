"""Telegram assets: raw updates -> bronze updates (+ quarantine) -> silver messages by day."""


from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import polars as pl

from lakehouse import settings
from lakehouse.defs.raw_files import (
    RawFilesConfig,
    bronze_load_specs,
    file_accounting,
    file_accounting_spec,
    raw_keys_to_load,
)
from lakehouse.defs.specs import DELTA_KINDS
from lakehouse.lake.delta import delta_metadata, scan
from lakehouse.lake.resource import LakeResource
from lakehouse.load.telegram import (
    BRONZE,
    DEFAULT_PARTITIONS_START,
    SILVER,
    bronze_ledger,
    load_bronze,
    rebuild_silver_days,
)
from lakehouse.load.telegram import (
    QUARANTINE as QUARANTINE_TABLE,
)
from lakehouse.sources import telegram_landing as landing
from lakehouse.sources.telegram import TelegramResource
from lakehouse.sources.telegram_landing import GETUPDATES_PREFIX, RAW_PREFIXES, poll_updates
from lakehouse.transforms.telegram import MESSAGE_TYPES

GROUP = "telegram"
# The asset key is the only name of a table or landing prefix: each is the Dagster-free
# module's (layer, table) or (raw, source, spec).
RAW_GETUPDATES = dg.AssetKey(landing.RAW_GETUPDATES)
RAW_WEBHOOK = dg.AssetKey(landing.RAW_WEBHOOK)
BRONZE_UPDATES = dg.AssetKey(BRONZE)
QUARANTINE = dg.AssetKey(QUARANTINE_TABLE)
SILVER_MESSAGES = dg.AssetKey(SILVER)

# Only the days that have messages are partitions: telegram_silver_sensor adds each day a bronze
# load touched (the demo its sample days). The UI then lists no empty day to backfill, and an
# edit of a message sent years ago adds its own day (or refreshes it) instead of needing a
# calendar reaching back to Telegram's launch. Keys are ISO days, in the order they were added.
message_days = dg.DynamicPartitionsDefinition(name="telegram_message_days")


# The raw keys a poll landed, in its materialization: the bronze step of the same run loads them.
LANDED_KEYS = "landed_keys"


def partition_days() -> tuple[date, date]:
    """(first, last) day a message may have: ``TELEGRAM_PARTITIONS_START`` (read when a load
    runs; default Telegram's launch) to tomorrow, UTC. Messages outside go to the quarantine."""
    start = settings.telegram_partitions_start(DEFAULT_PARTITIONS_START)
    try:
        first = date.fromisoformat(start)
    except ValueError:
        raise ValueError(f"TELEGRAM_PARTITIONS_START={start!r} is not a day (YYYY-MM-DD)") from None
    return (first, datetime.now(UTC).date() + timedelta(days=1))


@dg.asset(
    key=RAW_GETUPDATES,
    group_name=GROUP,
    kinds={"telegram", "json"},
    description="getUpdates answers landed byte-for-byte under raw/telegram/getupdates/"
                "YYYY/MM/DD/. The offset is the last landed update_id + 1, derived from the "
                "landing zone, so a crash between landing and the next call loses nothing. "
                "In telegram_poll_job, bronze loads the answers this run landed.",
)
def telegram_raw_getupdates(lake: LakeResource, telegram: TelegramResource) -> dg.MaterializeResult:
    result = poll_updates(telegram.updates_source(), lake.lake(),
                          max_batches=telegram.max_batches_per_run)
    return dg.MaterializeResult(metadata={
        "files_landed": len(result.keys),
        LANDED_KEYS: dg.MetadataValue.json(result.keys),
        "updates_landed": result.updates,
        "offset_used": result.first_offset if result.first_offset is not None else "none",
        "backend": "sample" if telegram.is_sample else "bot api",
        "dagster/uri": lake.lake().uri(GETUPDATES_PREFIX),
    })


telegram_raw_webhook = dg.AssetSpec(
    RAW_WEBHOOK,
    group_name=GROUP,
    kinds={"telegram", "json"},
    description="Webhook bodies landed by `lakehouse telegram webhook` as NDJSON segments under "
                "raw/telegram/webhook/YYYY/MM/DD/ (rotated by size and age).",
)


@dg.multi_asset(
    specs=bronze_load_specs(
        BRONZE_UPDATES, QUARANTINE, GROUP, [RAW_GETUPDATES, RAW_WEBHOOK],
        bronze_description="One row per Update: update_id, update_type, chat_id, date (UTC day of the "
                           "message), the Update as JSON text, the message it carries typed (decoded "
                           "once, read by silver), _source_file, _record_index, _ingested_at. Delta, "
                           "partitioned by date; re-loading a raw file replaces its rows.",
        quarantine_description="Raw Telegram records that could not be parsed, with the reason, the record "
                               "as received and where it came from."),
    check_specs=[file_accounting_spec(BRONZE_UPDATES)],
)
def telegram_bronze(context: dg.AssetExecutionContext, config: RawFilesConfig, lake: LakeResource,
                    telegram: TelegramResource) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    the_lake = lake.lake()
    polled = None if config.files or config.reload_all else landed_in_this_run(context)
    keys = polled if polled is not None else \
        raw_keys_to_load(the_lake, config, RAW_PREFIXES, bronze_ledger(the_lake))
    if not keys:
        context.log.info("no raw Telegram files to load")
        yield dg.MaterializeResult(asset_key=BRONZE_UPDATES, metadata={"files": 0, "dates": []})
        yield dg.MaterializeResult(asset_key=QUARANTINE, metadata={"files": 0})
        yield file_accounting(the_lake, BRONZE_UPDATES, QUARANTINE, [], 0)
        return
    load = load_bronze(the_lake, keys, telegram.allowed_chat_ids(), context.log.info,
                       days=partition_days())
    totals = {**load.totals(), "dropped_by_chat_allow_list": load.set_aside}
    yield dg.MaterializeResult(asset_key=BRONZE_UPDATES, metadata={
        **delta_metadata(the_lake, the_lake.table_uri(*BRONZE), load.preview), **totals,
        # The silver sensor reads this list to rebuild exactly the days that changed.
        "dates": dg.MetadataValue.json(sorted(d.isoformat() for d in load.dates)),
        "seconds_by_stage": dg.MetadataValue.json(load.stages.summary()),
    })
    yield dg.MaterializeResult(asset_key=QUARANTINE, metadata={
        **delta_metadata(the_lake, the_lake.table_uri(*QUARANTINE_TABLE)),
        "quarantined_this_run": load.quarantined,
    })
    yield file_accounting(the_lake, BRONZE_UPDATES, QUARANTINE, keys, load.records,
                          set_aside=load.set_aside)


def landed_in_this_run(context: dg.AssetExecutionContext) -> list[str] | None:
    """The answers the poll step of this run landed (a poll run: telegram_poll_job), else None.

    A poll run loads exactly these, not every file the ledger lacks: webhook segments and
    answers of earlier polls are the raw-file sensor's (it leaves answers alone while a poll
    run is in flight), so no file is loaded by two runs at once."""
    event = context.instance.get_latest_materialization_event(RAW_GETUPDATES)
    if event is None or event.run_id != context.run_id or event.asset_materialization is None:
        return None
    landed = event.asset_materialization.metadata.get(LANDED_KEYS)
    return list(landed.value) if landed is not None else None


@dg.asset(
    key=SILVER_MESSAGES,
    group_name=GROUP,
    kinds=DELTA_KINDS,
    deps=[BRONZE_UPDATES],
    partitions_def=message_days,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[
        dg.AssetCheckSpec("unique_chat_message", asset=SILVER_MESSAGES,
                          description="One row per (chat_id, message_id) in the rebuilt days, "
                                      "read back from the table as written."),
        dg.AssetCheckSpec("known_message_type", asset=SILVER_MESSAGES,
                          description="message_type is one of the documented kinds."),
    ],
    description="One row per (chat_id, message_id), the latest edit winning, from message, "
                "edited_message, channel_post and edited_channel_post. Partitioned by the UTC "
                "day the message was sent, one partition per day that has data (added when "
                "bronze loads it); a run replaces exactly its days.",
)
def telegram_silver(context: dg.AssetExecutionContext,
                      lake: LakeResource) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    the_lake = lake.lake()
    days = [date.fromisoformat(key) for key in context.partition_keys]
    load = rebuild_silver_days(the_lake, days)
    silver_uri = the_lake.table_uri(*SILVER)
    # Checked on the table as written (a concurrent writer would show here), not on the frames.
    written = (scan(the_lake, silver_uri).filter(pl.col("date").is_in(days))
               .select("chat_id", "message_id").collect())
    duplicates = written.height - written.unique().height
    unknown = sum(n for kind, n in load.by_type.items() if kind not in MESSAGE_TYPES)
    table_facts = delta_metadata(the_lake, silver_uri, load.preview)
    yield dg.MaterializeResult(metadata={
        **table_facts,
        "dagster/row_count": load.rows,  # of the rebuilt days; the table's is below
        "table_row_count": table_facts["dagster/row_count"],
        "messages_by_type": dg.MetadataValue.json(dict(sorted(load.by_type.items()))),
        "seconds_by_stage": dg.MetadataValue.json(load.stages.summary()),
    })
    yield dg.AssetCheckResult(check_name="unique_chat_message", passed=duplicates == 0,
                              metadata={"duplicate_rows": duplicates})
    yield dg.AssetCheckResult(check_name="known_message_type", passed=unknown == 0,
                              metadata={"unknown_rows": unknown})
