"""Loading Telegram tables, without Dagster: what the assets (and the benchmark) call.

Both loads bound their memory: bronze commits every ``BRONZE_COMMIT_BYTES`` of raw input, and
silver rebuilds one day at a time from bronze's typed ``message`` column (decoded once, when
bronze was loaded): it reads the day's files for the versions' key fields alone, chooses each
message's latest version on them, then reads the files again a batch at a time and streams each
batch's winners, and the days, into one commit.
"""

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable

from lakehouse.lake.delta import (
    append_replacing_sources,
    bronze_writer,
    open_table,
    replace_partitions_streamed,
)
from lakehouse.lake.jsondecode import json_decoder
from lakehouse.lake.ledger import Ledger
from lakehouse.lake.location import Lake
from lakehouse.lake.rawfiles import BronzeLoad, chunks_by_size
from lakehouse.lake.stagetimes import StageTimes
from lakehouse.sources.telegram_landing import (
    decode_records,
    decode_updates,
    message_updates_first,
    raw_records,
)
from lakehouse.transforms.telegram import (
    MESSAGE_UPDATE_TYPES,
    SILVER_SCHEMA,
    bronze_updates,
    message_versions,
    only_allowed_chats,
    quarantine_records,
    version_keys,
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
SILVER_BATCH_ROWS = 16_384  # bronze's row group
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
    with json_decoder() as con:
        for chunk in chunks_by_size(lake, keys, BRONZE_COMMIT_BYTES, BRONZE_COMMIT_FILES):
            _load_chunk(lake, chunk, allowed_chat_ids, stats, log, days, con)
            with stats.stages("ledger"):
                ledger.record(chunk)
    return stats


def _load_chunk(lake: Lake, keys: list[str], allowed: Collection[int], stats: BronzeLoad,
                log: Callable[[str], None], days: tuple[date, date] | None,
                con: duckdb.DuckDBPyConnection) -> None:
    timed = stats.stages
    with timed("read raw"):
        records, broken_files = raw_records(lake, keys)
    with timed("decode JSON"):
        # Bronze's rows are keyed by their source file and index: message updates first, in
        # vectors of one kind, cost the decoding less (``decode_records``).
        records = decode_records(message_updates_first(records), con)
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


# Finding each message's latest version needs only these leaves of bronze's message struct,
# which a Parquet reader fetches alone (Polars reads a struct column whole); the rest of the
# message is read again for the winners only. pyarrow reads a file's columns on one thread:
# on 2 cores its thread pool took about 10% more CPU for no less wall time.
_KEY_COLUMNS = ["update_type", "update_id", "message.message_id", "message.chat.id",
                "message.edit_date"]
_VERSION_COLUMNS = ["update_id", "update_type", "message", "_source_file", "_record_index"]
_TEXT_COLUMNS = ["update_id", "update_type", "update_json", "_source_file", "_record_index"]
_MESSAGE_ROWS = pl.col("update_type").is_in(MESSAGE_UPDATE_TYPES)
_KEYS = ["_row", "chat_id", "message_id", "edited_at", "update_id", "is_edited"]


def _day_files(bronze: DeltaTable, day: date) -> list[str]:
    """The data files of one day of bronze, in a fixed order: a row's position in them
    names it in both of silver's reads."""
    protocol = bronze.protocol()
    features = set(protocol.reader_features or ()) & {"deletionVectors", "columnMapping"}
    if protocol.min_reader_version == 2 or features:
        # Deletion vectors or column mapping would make the files' rows or names differ from
        # the table's; bronze is written by this code alone (delta-rs), which uses neither.
        raise ValueError(f"bronze uses Delta reader features silver's file reader does not "
                         f"apply: {sorted(features) or 'columnMapping'}")
    return sorted(bronze.file_uris(file_pruning_predicate=[("date", "=", day.isoformat())]))


def _day_keys(lake: Lake, files: list[str],
              stages: StageTimes) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the narrow keys of the day's typed message versions, the versions of rows loaded
    before bronze kept the typed message, decoded from their text), each version named by
    ``_row``, its row in the day's files taken in order."""
    keys: list[pl.DataFrame] = []
    old: list[pl.DataFrame] = []
    start = 0
    for uri in files:
        with stages("bronze read"), lake.open_file(uri) as source:
            parquet = pq.ParquetFile(source)
            typed = "message" in parquet.schema_arrow.names
            rows = pl.from_arrow(parquet.read(columns=_KEY_COLUMNS if typed
                                              else ["update_type"], use_threads=False))
        with stages("silver transform"):
            rows = rows.with_row_index("_row", start).filter(_MESSAGE_ROWS)
            if typed:
                keys.append(version_keys(rows.lazy(), ["_row"]).collect())
                rows = rows.filter(pl.col("message").is_null())
        if rows.height:  # rows loaded before bronze kept the message: decoded from their text
            with stages("bronze read"), lake.open_file(uri) as source:
                table = pq.ParquetFile(source).read(columns=_TEXT_COLUMNS, use_threads=False)
                text = pl.from_arrow(table.take((rows.get_column("_row") - start).to_arrow()))
            with stages("decode JSON (rows loaded before bronze kept the message)"):
                text = decode_updates(text).with_columns(rows.get_column("_row"))
            old.append(message_versions(text.lazy(), ["_row"]).collect())
        start += parquet.metadata.num_rows
    old_versions = pl.concat(old) if old else pl.DataFrame()
    if old_versions.height:
        keys.append(old_versions)
    return (pl.concat([k.select(_KEYS) for k in keys]) if keys else pl.DataFrame()), old_versions


def _day_messages(lake: Lake, files: list[str], stages: StageTimes) -> Iterator[pl.DataFrame]:
    """Silver rows of one day from bronze, in batches: the latest version of every message is
    found on the versions' narrow key columns alone (``winning_versions``), read first; then
    the day's files are read again a batch at a time, and only each batch's winners are typed
    (``message_versions``) and given to the write. A file with no winner is not read again.

    ``files``: the day's bronze data files (``_day_files``)."""
    keys, old = _day_keys(lake, files, stages)
    if not keys.height:
        return
    with stages("silver transform"):
        # The streaming engine: for 900k keys it took half the CPU time and 60 MiB less peak
        # memory than the in-memory one.
        winners = (winning_versions(keys.lazy(), ["_row"]).select("_row", "is_edited")
                   .sort("_row").collect())
        del keys
        if old.height:  # rows loaded before bronze kept the message: their versions are held
            old = old.drop("is_edited").join(winners, on="_row")
            winners = winners.filter(~pl.col("_row").is_in(old.get_column("_row").implode()))
        rows = winners.get_column("_row")
    start = 0
    for uri in files:
        with lake.open_file(uri) as source:
            with stages("bronze read"):
                # The two dictionary-encoded columns stay dictionaries (Polars categoricals,
                # strings again in silver's cast): a file's one source name was otherwise
                # written out for each of its rows. A day rebuilt alone: 10% less CPU.
                parquet = pq.ParquetFile(source, read_dictionary=["_source_file", "update_type"])
            end = start + parquet.metadata.num_rows
            if rows.search_sorted(start) == rows.search_sorted(end):
                start = end  # no winner in this file: not read again
                continue
            batches = parquet.iter_batches(batch_size=SILVER_BATCH_ROWS, columns=_VERSION_COLUMNS,
                                           use_threads=False)
            while True:
                with stages("bronze read"):
                    batch = next(batches, None)
                if batch is None:
                    break
                with stages("silver transform"):
                    first = rows.search_sorted(start)
                    mine = winners.slice(first, rows.search_sorted(start + batch.num_rows) - first)
                    # Gathered by Polars (string views: the text is not copied); pyarrow's
                    # take of the nested rows took 0.6 s CPU more for a 900k-message day.
                    taken = pl.from_arrow(batch)[mine.get_column("_row") - start]
                    start += batch.num_rows
                    del batch
                    messages = (message_versions(taken.lazy()).collect()
                                .with_columns(mine.get_column("is_edited")))
                if messages.height:
                    yield messages.select(list(SILVER_SCHEMA)).cast(SILVER_SCHEMA)
    if old.height:
        yield old.select(list(SILVER_SCHEMA)).cast(SILVER_SCHEMA)


def rebuild_silver_days(lake: Lake, days: list[date]) -> SilverLoad:
    """Rebuild the given days of silver messages from bronze, in one commit, a day at a time."""
    load = SilverLoad()
    bronze = open_table(lake, lake.table_uri(*BRONZE))
    schema = pl.DataFrame(schema=SILVER_SCHEMA).to_arrow().schema
    # Listed before the write starts: delta-rs cannot be called from the batches it is
    # writing (they run inside its runtime).
    day_files = [_day_files(bronze, day) for day in sorted(days)] if bronze is not None else []

    def batches() -> Iterator[pa.RecordBatch]:
        load.rows, load.by_type = 0, {}
        for files in day_files:
            for messages in _day_messages(lake, files, load.stages):
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
