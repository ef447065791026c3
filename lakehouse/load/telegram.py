"""Loading Telegram tables, without Dagster: what the assets (and the benchmark) call.

Both loads bound their memory: bronze commits every ``BRONZE_COMMIT_BYTES`` of raw input, and
silver decodes a day's bronze rows batch by batch, keeping only the typed message columns.
"""

from collections.abc import Callable, Collection
from datetime import UTC, date, datetime, timedelta

import polars as pl

from lakehouse.lake.delta import append_replacing_sources, open_table, replace_partitions, scan
from lakehouse.lake.ledger import Ledger
from lakehouse.lake.location import Lake
from lakehouse.lake.rawfiles import BronzeLoad, chunks_by_size
from lakehouse.sources.telegram_landing import decode_updates, read_raw_records
from lakehouse.transforms.telegram import (
    MESSAGE_UPDATE_TYPES,
    SILVER_SCHEMA,
    bronze_updates,
    latest_versions,
    message_versions,
    quarantine_records,
)

BRONZE_COMMIT_BYTES = 64 * 1024 * 1024
BRONZE_COMMIT_FILES = 2000
# Telegram's launch: no message can be older, so by default every edit of an old message has
# its day in silver (a partition exists only for a day with messages, so an early floor costs
# nothing). TELEGRAM_PARTITIONS_START moves it: older messages go to the quarantine.
DEFAULT_PARTITIONS_START = "2013-08-14"
SILVER_BATCH_ROWS = 200_000
BRONZE, QUARANTINE, SILVER = ("bronze", "telegram_updates"), \
    ("quarantine", "telegram_quarantine"), ("silver", "telegram_messages")


def bronze_ledger(lake: Lake) -> Ledger:
    return Ledger(lake, *BRONZE)


def load_bronze(lake: Lake, keys: list[str], allowed_chat_ids: Collection[int] = (),
                log: Callable[[str], None] = lambda _m: None,
                days: tuple[date, date] | None = None) -> BronzeLoad:
    """Load raw files into bronze and quarantine, replacing any rows they had before, and
    record them in bronze's ledger after each chunk's commits.

    ``days`` (first, last) are the days silver can hold (its partitions): a message sent
    outside them goes to the quarantine with that reason instead of failing silver.
    """
    stats = BronzeLoad(files=len(keys))
    ledger = bronze_ledger(lake)
    days = days or (date.fromisoformat(DEFAULT_PARTITIONS_START),
                    datetime.now(UTC).date() + timedelta(days=1))
    for chunk in chunks_by_size(lake, keys, BRONZE_COMMIT_BYTES, BRONZE_COMMIT_FILES):
        _load_chunk(lake, chunk, allowed_chat_ids, stats, log, days)
        ledger.record(chunk)
    return stats


def _load_chunk(lake: Lake, keys: list[str], allowed: Collection[int], stats: BronzeLoad,
                log: Callable[[str], None], days: tuple[date, date] | None) -> None:
    records, broken_files = read_raw_records(lake, keys)
    every_chat = bronze_updates(records.lazy(), days=days).collect()
    bronze = (bronze_updates(records.lazy(), allowed, days).collect() if allowed
              else every_chat)
    quarantine = pl.concat([quarantine_records(records.lazy(), days).collect(), broken_files])
    del records
    append_replacing_sources(lake, lake.table_uri(*BRONZE), bronze, keys, partition_by=["date"])
    append_replacing_sources(lake, lake.table_uri(*QUARANTINE), quarantine, keys)
    stats.records += every_chat.height + quarantine.height
    stats.bronze_rows += bronze.height
    stats.quarantined += quarantine.height
    stats.set_aside += every_chat.height - bronze.height  # chats outside the allow-list
    stats.dates.update(bronze.get_column("date").unique().to_list())
    stats.preview = bronze.head(10).drop("update_json")
    log(f"loaded {len(keys)} raw files: {bronze.height} updates, {quarantine.height} quarantined")


def bronze_days(lake: Lake) -> list[str]:
    """The ISO days bronze holds rows of, read from its Delta log (no data file is opened)."""
    table = open_table(lake, lake.table_uri(*BRONZE))
    if table is None:
        return []
    return sorted({part["date"] for part in table.partitions() if part.get("date")})


def rebuild_silver_days(lake: Lake, days: list[date]) -> pl.DataFrame:
    """Rebuild the given days of silver messages from bronze, in one commit; returns them."""
    versions: list[pl.DataFrame] = []
    if open_table(lake, lake.table_uri(*BRONZE)) is not None:
        rows = (scan(lake, lake.table_uri(*BRONZE))
                .filter(pl.col("date").is_in(days)
                        & pl.col("update_type").is_in(MESSAGE_UPDATE_TYPES))
                .select("update_id", "update_type", "update_json", "_source_file"))
        # Streamed batch by batch: only the typed message columns of the whole day are kept.
        for batch in rows.collect_batches(chunk_size=SILVER_BATCH_ROWS, maintain_order=False):
            versions.append(message_versions(decode_updates(batch).lazy()).collect())
    messages = (latest_versions(pl.concat(versions).lazy()).collect() if versions
                else pl.DataFrame(schema=SILVER_SCHEMA))
    replace_partitions(lake, lake.table_uri(*SILVER), messages, "date", days)
    return messages
