"""Loading Telegram tables, without Dagster: what the assets (and the benchmark) call.

Both loads bound their memory: bronze commits every ``BRONZE_COMMIT_BYTES`` of raw input, and
silver rebuilds one day at a time from bronze's typed ``message`` column (decoded once, when
bronze was loaded), choosing each message's latest version on the narrow key columns and
streaming the winners of each batch, and the days, into one commit.
"""

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable

from lakehouse.lake.delta import (
    append_replacing_sources,
    bronze_writer,
    open_table,
    replace_partitions_streamed,
)
from lakehouse.lake.ledger import Ledger
from lakehouse.lake.location import Lake
from lakehouse.lake.rawfiles import BronzeLoad, chunks_by_size
from lakehouse.lake.stagetimes import StageTimes
from lakehouse.sources.telegram_landing import decode_records, decode_updates, raw_records
from lakehouse.transforms.telegram import (
    MESSAGE_UPDATE_TYPES,
    SILVER_SCHEMA,
    bronze_updates,
    message_versions,
    only_allowed_chats,
    quarantine_records,
    winning_versions,
)

# A chunk's peak memory is many times its raw size (the text, its decoded structs, the Arrow
# copy delta-rs writes): 32 MiB chunks kept a process loading 359 MiB at 0.87 GiB peak RSS
# (64 MiB: 1.03 GiB), and the peak does not grow with the input.
BRONZE_COMMIT_BYTES = 32 * 1024 * 1024
BRONZE_COMMIT_FILES = 2000
# Statistics on the columns that prune: the envelope, the key, the source file.
BRONZE_WRITER = bronze_writer(
    ("update_id", "update_type", "chat_id", "_source_file", "_record_index", "_ingested_at"))
SILVER_BATCH_ROWS = 50_000  # 200,000 measured 0.08 GiB more peak RSS for a 900k-message day
# Telegram's launch: no message can be older, so by default every edit of an old message has
# its day in silver (a partition exists only for a day with messages, so an early floor costs
# nothing). TELEGRAM_PARTITIONS_START moves it: older messages go to the quarantine.
DEFAULT_PARTITIONS_START = "2013-08-14"
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
        with stats.stages("ledger"):
            ledger.record(chunk)
    return stats


def _load_chunk(lake: Lake, keys: list[str], allowed: Collection[int], stats: BronzeLoad,
                log: Callable[[str], None], days: tuple[date, date] | None) -> None:
    timed = stats.stages
    with timed("read raw"):
        records, broken_files = raw_records(lake, keys)
    with timed("decode JSON"):
        records = decode_records(records)
    with timed("bronze transform"):
        every_chat = bronze_updates(records.lazy(), days=days).collect()
        bronze = only_allowed_chats(every_chat.lazy(), allowed).collect() if allowed else every_chat
        quarantine = pl.concat([quarantine_records(records.lazy(), days).collect(), broken_files])
    del records
    with timed("bronze write"):
        append_replacing_sources(lake, lake.table_uri(*BRONZE), bronze, keys,
                                 partition_by=["date"], writer_properties=BRONZE_WRITER)
    with timed("quarantine write"):
        append_replacing_sources(lake, lake.table_uri(*QUARANTINE), quarantine, keys)
    stats.records += every_chat.height + quarantine.height
    stats.bronze_rows += bronze.height
    stats.quarantined += quarantine.height
    stats.set_aside += every_chat.height - bronze.height  # chats outside the allow-list
    stats.dates.update(bronze.get_column("date").unique().to_list())
    stats.preview = bronze.head(10).drop("update_json", "message")
    log(f"loaded {len(keys)} raw files: {bronze.height} updates, {quarantine.height} quarantined")


def bronze_days(lake: Lake) -> list[str]:
    """The ISO days bronze holds rows of, read from its Delta log (no data file is opened)."""
    table = open_table(lake, lake.table_uri(*BRONZE))
    if table is None:
        return []
    return sorted({part["date"] for part in table.partitions() if part.get("date")})


@dataclass
class SilverLoad:
    """What a silver rebuild wrote: its rows (of the rebuilt days), by message type, and the
    first rows for a preview. The rows themselves are not kept: a day at a time is."""
    rows: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    preview: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=SILVER_SCHEMA))
    stages: StageTimes = field(default_factory=StageTimes)


_VERSION_COLUMNS = ["update_id", "update_type", "message", "_source_file", "_record_index"]
_KEY = ["_source_file", "_record_index"]  # bronze's key
_WINNER_INPUT = ["chat_id", "message_id", "edited_at", "update_id", "is_edited"]


def _day_versions(lake: Lake, bronze: DeltaTable, day: date, with_message: bool,
                  stages: StageTimes) -> Iterator[pl.LazyFrame]:
    """The message versions (``message_versions``) of one day of bronze, batch by batch.

    Rows loaded before bronze kept the typed message (``message`` missing or null) are decoded
    from their text; a current lake has none.
    """
    rows = (pl.scan_delta(bronze, storage_options=lake.storage_options or None)
            .filter((pl.col("date") == day) & pl.col("update_type").is_in(MESSAGE_UPDATE_TYPES)))
    old_files: set[str] = set()
    batches = (rows.select(_VERSION_COLUMNS).collect_batches(chunk_size=SILVER_BATCH_ROWS,
                                                            maintain_order=False)
               if with_message else iter(()))
    while True:
        with stages("bronze read"):
            batch = next(batches, None)
        if batch is None:
            break
        typed = batch.filter(pl.col("message").is_not_null())
        yield message_versions(typed.lazy())
        if typed.height < batch.height:
            old_files.update(batch.filter(pl.col("message").is_null())
                             .get_column("_source_file").unique().to_list())
    if not with_message or old_files:
        text = ["update_id", "update_type", "update_json", *_KEY]
        with stages("bronze read"):
            if with_message:
                # The null test runs after the read: Polars fails pruning files by a struct
                # column's statistics when some files lack the column.
                old = (rows.filter(pl.col("_source_file").is_in(sorted(old_files)))
                       .select(*text, pl.col("message").is_null().alias("_old")).collect()
                       .filter("_old").drop("_old"))
            else:
                old = rows.select(text).collect()
        with stages("decode JSON (rows loaded before bronze kept the message)"):
            old = decode_updates(old)
        yield message_versions(old.lazy())


def _day_messages(lake: Lake, bronze: DeltaTable, day: date, with_message: bool,
                  stages: StageTimes) -> Iterator[pl.DataFrame]:
    """Silver rows of one day from bronze, in batches: the day's message versions are read
    once, the latest version of every message is found on their narrow key columns alone
    (``winning_versions``), then each batch of versions gives its winners and is dropped."""
    # File names as categories: a large day's versions stay narrower (a name is repeated on
    # every row of its file).
    as_key = pl.col("_source_file").cast(pl.Categorical)
    versions: list[pl.DataFrame] = []
    for batch in _day_versions(lake, bronze, day, with_message, stages):
        with stages("silver transform"):
            versions.append(batch.with_columns(as_key).collect())
    if not versions:
        return
    with stages("silver transform"):
        # A version is named by its row in the day's batches taken in order: the winners
        # of a batch are then a slice of the winners sorted by row, gathered by position
        # (no join on the file name and record index).
        keyed = pl.concat([v.select(_WINNER_INPUT) for v in versions],
                          rechunk=False).with_row_index("_row")
        # The streaming engine: for 900k keys it took half the CPU time and 60 MiB less peak
        # memory than the in-memory one.
        winners = (winning_versions(keyed.lazy(), ["_row"]).select("_row", "is_edited")
                   .sort("_row").collect())
        del keyed
        rows = winners.get_column("_row")
    versions.reverse()
    start = 0
    while versions:
        batch = versions.pop()  # each batch freed once its winners are out
        with stages("silver transform"):
            first = rows.search_sorted(start, side="left")
            end = rows.search_sorted(start + batch.height, side="left")
            mine = winners.slice(first, end - first)
            messages = (batch.drop("is_edited")[mine.get_column("_row") - start]
                        .with_columns(mine.get_column("is_edited"))
                        .select(list(SILVER_SCHEMA)).cast(SILVER_SCHEMA))
            start += batch.height
        del batch
        if messages.height:
            yield messages


def rebuild_silver_days(lake: Lake, days: list[date]) -> SilverLoad:
    """Rebuild the given days of silver messages from bronze, in one commit, a day at a time."""
    load = SilverLoad()
    bronze = open_table(lake, lake.table_uri(*BRONZE))
    with_message = bronze is not None and "message" in {f.name for f in bronze.schema().fields}
    schema = pl.DataFrame(schema=SILVER_SCHEMA).to_arrow().schema

    def batches() -> Iterator[pa.RecordBatch]:
        load.rows, load.by_type = 0, {}
        for day in (sorted(days) if bronze is not None else []):
            # The table opened once, not once a day: its log is read once per rebuild.
            for messages in _day_messages(lake, bronze, day, with_message, load.stages):
                load.rows += messages.height
                for kind, count in messages.get_column("message_type").value_counts().iter_rows():
                    load.by_type[kind] = load.by_type.get(kind, 0) + count
                if not load.preview.height:
                    load.preview = messages.head(10)
                yield from messages.to_arrow().cast(schema).to_batches()

    # The write runs interleaved with the days' reads and transforms (nested stages, charged
    # to themselves): what is left is the write.
    with load.stages("silver write"):
        replace_partitions_streamed(lake, lake.table_uri(*SILVER), schema, batches, "date", days)
    return load
