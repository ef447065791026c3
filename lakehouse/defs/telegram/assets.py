"""Telegram assets: raw updates -> bronze updates (+ quarantine) -> silver messages by day."""


from collections.abc import Iterator
from datetime import date

import dagster as dg
import polars as pl

from lakehouse.lake.delta import (
    append_replacing_sources,
    delta_metadata,
    replace_partitions,
    scan,
)
from lakehouse.lake.location import Lake
from lakehouse.lake.resource import LakeResource
from lakehouse.sources.telegram import TelegramResource
from lakehouse.sources.telegram_landing import (
    GETUPDATES_PREFIX,
    RAW_PREFIXES,
    decode_updates,
    poll_updates,
    read_raw_records,
)
from lakehouse.transforms.telegram import (
    MESSAGE_TYPES,
    bronze_updates,
    quarantine_records,
    silver_messages,
)

GROUP = "telegram"
RAW_GETUPDATES = dg.AssetKey(["raw", "telegram", "getupdates"])
RAW_WEBHOOK = dg.AssetKey(["raw", "telegram", "webhook"])
BRONZE_UPDATES = dg.AssetKey(["bronze", "telegram_updates"])
QUARANTINE = dg.AssetKey(["quarantine", "telegram_quarantine"])
SILVER_MESSAGES = dg.AssetKey(["silver", "telegram_messages"])
FILES_PER_COMMIT = 500  # bounds memory; each chunk is one bronze commit

message_days = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_offset=1)


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


class BronzeFilesConfig(dg.Config):
    files: list[str] = []
    """Raw keys to (re)load. Empty: every raw Telegram file (a full, idempotent reload)."""


def _raw_keys(lake: Lake, config: BronzeFilesConfig) -> list[str]:
    if config.files:
        return sorted(config.files)
    return [k for prefix in RAW_PREFIXES for k in lake.list_keys(prefix)]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(BRONZE_UPDATES, group_name=GROUP, kinds={"polars", "delta"},
                     deps=[RAW_GETUPDATES, RAW_WEBHOOK],
                     description="One row per Update: update_id, update_type, chat_id, date "
                                 "(UTC day of the message), the Update as JSON text, "
                                 "_source_file, _record_index, _ingested_at. Delta, partitioned "
                                 "by date; re-loading a raw file replaces its rows."),
        dg.AssetSpec(QUARANTINE, group_name=GROUP, kinds={"polars", "delta"},
                     deps=[RAW_GETUPDATES, RAW_WEBHOOK],
                     description="Raw Telegram records that could not be parsed, with the "
                                 "reason, the record as received and where it came from."),
    ],
)
def telegram_bronze(context: dg.AssetExecutionContext, config: BronzeFilesConfig,
                    lake: LakeResource, telegram: TelegramResource) -> Iterator[dg.MaterializeResult]:
    the_lake = lake.lake()
    keys = _raw_keys(the_lake, config)
    allowed = telegram.allowed_chat_ids()
    bronze_uri = the_lake.table_uri("bronze", "telegram_updates")
    quarantine_uri = the_lake.table_uri("quarantine", "telegram_quarantine")
    dates: set[date] = set()
    preview = pl.DataFrame()
    totals = {"records": 0, "bronze_rows": 0, "quarantined": 0, "dropped_by_chat_allow_list": 0}
    for start in range(0, len(keys), FILES_PER_COMMIT):
        chunk = keys[start:start + FILES_PER_COMMIT]
        records, broken_files = read_raw_records(the_lake, chunk)
        all_chats = bronze_updates(records.lazy()).collect()
        bronze = bronze_updates(records.lazy(), allowed).collect() if allowed else all_chats
        quarantine = pl.concat([quarantine_records(records.lazy()).collect(), broken_files])
        append_replacing_sources(the_lake, bronze_uri, bronze, chunk, partition_by=["date"])
        append_replacing_sources(the_lake, quarantine_uri, quarantine, chunk)
        dates.update(bronze.get_column("date").unique().to_list())
        preview = bronze.head(10).drop("update_json")
        totals["records"] += records.height
        totals["bronze_rows"] += bronze.height
        totals["quarantined"] += quarantine.height
        totals["dropped_by_chat_allow_list"] += all_chats.height - bronze.height
        context.log.info(f"loaded {len(chunk)} raw files: {bronze.height} updates, "
                         f"{quarantine.height} quarantined")
    day_list = sorted(d.isoformat() for d in dates)
    if not keys:
        context.log.info("no raw Telegram files to load")
        yield dg.MaterializeResult(asset_key=BRONZE_UPDATES, metadata={"files": 0, "dates": []})
        yield dg.MaterializeResult(asset_key=QUARANTINE, metadata={"files": 0})
        return
    bronze_meta = delta_metadata(the_lake, bronze_uri, preview)
    yield dg.MaterializeResult(asset_key=BRONZE_UPDATES, metadata={
        **bronze_meta, **totals, "files": len(keys),
        # The silver sensor reads this list to rebuild exactly the days that changed.
        "dates": dg.MetadataValue.json(day_list),
    })
    yield dg.MaterializeResult(asset_key=QUARANTINE, metadata={
        **delta_metadata(the_lake, quarantine_uri), "quarantined_this_run": totals["quarantined"],
    })


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
                          description="One row per (chat_id, message_id) in each rebuilt day."),
        dg.AssetCheckSpec("known_message_type", asset=SILVER_MESSAGES,
                          description="message_type is one of the documented kinds."),
    ],
    description="One row per (chat_id, message_id), the latest edit winning, from message, "
                "edited_message, channel_post and edited_channel_post. Partitioned by the UTC "
                "day the message was sent; a run replaces exactly its days.",
)
def telegram_messages(context: dg.AssetExecutionContext,
                      lake: LakeResource) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    the_lake = lake.lake()
    days = _partition_days(context)
    bronze_uri = the_lake.table_uri("bronze", "telegram_updates")
    silver_uri = the_lake.table_uri("silver", "telegram_messages")
    bronze = scan(the_lake, bronze_uri).filter(pl.col("date").is_in(days)).collect()
    messages = silver_messages(decode_updates(bronze).lazy()).collect()
    replace_partitions(the_lake, silver_uri, messages, "date", days)
    duplicates = messages.height - messages.select("chat_id", "message_id").unique().height
    unknown = messages.filter(~pl.col("message_type").is_in(MESSAGE_TYPES)).height
    yield dg.MaterializeResult(metadata={
        **delta_metadata(the_lake, silver_uri, messages),
        "dagster/row_count": messages.height,  # of the rebuilt days; the table's is below
        "table_row_count": delta_metadata(the_lake, silver_uri)["dagster/row_count"],
        "messages_by_type": dg.MetadataValue.json(
            dict(messages.group_by("message_type").len().sort("message_type").iter_rows())),
    })
    yield dg.AssetCheckResult(check_name="unique_chat_message", passed=duplicates == 0,
                              metadata={"duplicate_rows": duplicates})
    yield dg.AssetCheckResult(check_name="known_message_type", passed=unknown == 0,
                              metadata={"unknown_rows": unknown})
