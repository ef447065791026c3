"""Telegram assets: raw updates -> bronze updates (+ quarantine) -> silver messages by day."""


import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import polars as pl

from lakehouse.defs.raw_files import (
    RawFilesConfig,
    file_accounting,
    file_accounting_spec,
    raw_keys_to_load,
)
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
from lakehouse.sources.telegram import TelegramResource
from lakehouse.sources.telegram_landing import GETUPDATES_PREFIX, RAW_PREFIXES, poll_updates
from lakehouse.transforms.telegram import MESSAGE_TYPES

GROUP = "telegram"
RAW_GETUPDATES = dg.AssetKey(["raw", "telegram", "getupdates"])
RAW_WEBHOOK = dg.AssetKey(["raw", "telegram", "webhook"])
# The asset key is the table's only name: each is the load module's (layer, table).
BRONZE_UPDATES = dg.AssetKey(BRONZE)
QUARANTINE = dg.AssetKey(QUARANTINE_TABLE)
SILVER_MESSAGES = dg.AssetKey(SILVER)

# Read when the code location loads: a partitions definition is fixed for the location's life.
PARTITIONS_START = os.environ.get("TELEGRAM_PARTITIONS_START") or DEFAULT_PARTITIONS_START
message_days = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, end_offset=1)


def partition_days() -> tuple[date, date]:
    """(first, last) day of the silver partitions now (the last one is tomorrow, UTC)."""
    return (message_days.start.date(), datetime.now(UTC).date() + timedelta(days=1))


@dg.asset(
    key=RAW_GETUPDATES,
    group_name=GROUP,
    kinds={"telegram", "json"},
    description="getUpdates answers landed byte-for-byte under raw/telegram/json/getupdates/"
                "YYYY/MM/DD/. The offset is the last landed update_id + 1, derived from the "
                "landing zone, so a crash between landing and the next call loses nothing.",
)
def telegram_raw_getupdates(lake: LakeResource, telegram: TelegramResource) -> dg.MaterializeResult:
    result = poll_updates(telegram.updates_source(), lake.lake(),
                          max_batches=telegram.max_batches_per_run)
    return dg.MaterializeResult(metadata={
        "files_landed": len(result.keys),
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
                "raw/telegram/json/webhook/YYYY/MM/DD/ (rotated by size and age).",
)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(BRONZE_UPDATES, group_name=GROUP, kinds={"polars", "delta"},
                     deps=[RAW_GETUPDATES, RAW_WEBHOOK],
                     description="One row per Update: update_id, update_type, chat_id, date "
                                 "(UTC day of the message), the Update as JSON text, the "
                                 "message it carries typed (decoded once, read by silver), "
                                 "_source_file, _record_index, _ingested_at. Delta, partitioned "
                                 "by date; re-loading a raw file replaces its rows."),
        dg.AssetSpec(QUARANTINE, group_name=GROUP, kinds={"polars", "delta"},
                     deps=[RAW_GETUPDATES, RAW_WEBHOOK],
                     description="Raw Telegram records that could not be parsed, with the "
                                 "reason, the record as received and where it came from."),
    ],
    check_specs=[file_accounting_spec(BRONZE_UPDATES)],
)
def telegram_bronze(context: dg.AssetExecutionContext, config: RawFilesConfig, lake: LakeResource,
                    telegram: TelegramResource) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    the_lake = lake.lake()
    keys = raw_keys_to_load(the_lake, config, RAW_PREFIXES, bronze_ledger(the_lake))
    if not keys:
        context.log.info("no raw Telegram files to load")
        yield dg.MaterializeResult(asset_key=BRONZE_UPDATES, metadata={"files": 0, "dates": []})
        yield dg.MaterializeResult(asset_key=QUARANTINE, metadata={"files": 0})
        yield file_accounting(the_lake, BRONZE_UPDATES, QUARANTINE, [], 0)
        return
    load = load_bronze(the_lake, keys, telegram.allowed_chat_ids(), context.log.info,
                       days=partition_days())
    totals = {"files": load.files, "records": load.records, "bronze_rows": load.bronze_rows,
              "quarantined": load.quarantined,
              "dropped_by_chat_allow_list": load.dropped_by_chat_allow_list}
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
                          set_aside=load.dropped_by_chat_allow_list)


def _partition_days(context: dg.AssetExecutionContext) -> list[date]:
    window = context.partition_time_window
    days = []
    day = window.start.date()
    while day < window.end.date():
        days.append(day)
        day = date.fromordinal(day.toordinal() + 1)
    return days


@dg.asset(
    key=SILVER_MESSAGES,
    group_name=GROUP,
    kinds={"polars", "delta"},
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
                "day the message was sent; a run replaces exactly its days.",
)
def telegram_silver(context: dg.AssetExecutionContext,
                      lake: LakeResource) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    the_lake = lake.lake()
    days = _partition_days(context)
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
