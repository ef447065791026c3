"""Delta Lake writes on delta-rs: the three write modes of the layer contracts.

- ``append_replacing_sources``: bronze and quarantine. Rows of the given source files are
  replaced, so re-landing a file never duplicates its rows.
- ``replace_partitions``: silver by day. Exactly the named partitions are replaced, in one commit.
- ``merge_on_keys``: silver by natural key (upsert).

Every write retries when a concurrent writer wins the commit race, and returns the facts a
Dagster materialization reports (``delta_metadata``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date
from typing import Any, TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (registers pa.compute)
from deltalake import ColumnProperties, DeltaTable, WriterProperties, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from lakehouse.lake import table_docs
from lakehouse.lake.location import Lake
from lakehouse.secrets import redact

T = TypeVar("T")
COMMIT_ATTEMPTS = 5
# delta-rs pulls a stream of batches into a channel of 10 batches ahead of its Parquet writer
# (read once per process, at its first write). Fed by a faster reader (DuckDB landing a gold
# model), that channel is full for the whole write: 10 batches of 131,072 rows, about 120 MiB
# for dim_title, held only once a table has more than ten batches, so the landing's peak grew
# with the model's size (dim_title 1.1M -> 4.4M rows: 486 -> 727 MiB). Two batches ahead keep
# the writer busy (the same or less wall time) and what is in flight a batch or two.
os.environ.setdefault("DELTARS_WRITER_BATCH_CHANNEL_SIZE", "2")
# Opening a table replays every JSON commit since its last checkpoint, and delta-rs writes one
# every ``delta.checkpointInterval`` commits (100 by default). A table written every few minutes
# and opened a dozen times a run would replay up to 100 commits on each open, a cost growing
# with the writes since the last upkeep; a checkpoint every 10 commits keeps that short and
# costs one small Parquet file per 10 writes. Set when a table is created, and by the upkeep
# (``lakehouse.lake.maintenance``) on tables created before.
# The log is kept a day, not delta-rs' 30 days: every open of a table lists its whole
# ``_delta_log`` on a local lake, so a month of 5-minute commits made each open of a busy
# table several times dearer (``lakehouse.lake.maintenance``). Writers drop the expired commits
# at each checkpoint; versions older than a day can no longer be loaded.
LOG_RETENTION_HOURS = 24


def log_retention(hours: float) -> str:
    """``delta.logRetentionDuration``'s value for ``hours`` (whole hours read as such)."""
    if float(hours).is_integer():
        return f"interval {int(hours)} hours"
    return f"interval {max(1, round(hours * 3600))} seconds"


TABLE_PROPERTIES = {"delta.checkpointInterval": "10",
                    "delta.logRetentionDuration": log_retention(LOG_RETENTION_HOURS)}
# Facts a writer records about the table as its write left it (``lakehouse.source``: the raw
# version a snapshot table was built from) go in its commit's metadata under this prefix.
FACT_PREFIX = "lakehouse."
# Commits that change no data: the upkeep's compaction, vacuum and property settings.
MAINTENANCE_OPERATIONS = frozenset({"OPTIMIZE", "VACUUM START", "VACUUM END",
                                    "SET TBLPROPERTIES"})
# Commits of a table's history searched for its newest data commit or its merge key (the
# upkeep adds a few a day to a quiet table; a merged table merges every batch).
HISTORY_SEARCHED = 50


def newest_data_commit(table: DeltaTable) -> dict[str, Any] | None:
    """The commit info of the table's newest commit that is not upkeep, if the kept log (and
    the last ``HISTORY_SEARCHED`` commits) still holds one."""
    for commit in table.history(HISTORY_SEARCHED):
        if commit.get("operation") not in MAINTENANCE_OPERATIONS:
            return commit
    return None


def commit_facts(commit: dict[str, Any] | None) -> dict[str, str]:
    """The ``FACT_PREFIX`` entries of a commit's metadata."""
    return {k: str(v) for k, v in (commit or {}).items() if k.startswith(FACT_PREFIX)}
BRONZE_ROW_GROUP_ROWS = 16_384


def bronze_writer(pruning_columns: Sequence[str]) -> WriterProperties:
    """How a bronze table's Parquet files are written, for every domain.

    Row groups of 16,384 rows instead of delta-rs' default of a whole file: a reader and the
    writer hold a whole row group decoded, nested records included (Telegram: silver's read of
    a 900k-message day 0.45 -> 0.31 GiB peak RSS; tweets: a 100k-tweet batch's load 1,147 ->
    1,017 MiB, same CPU). Statistics only on ``pruning_columns`` (a reload's ``_source_file``
    predicate, the envelope, the key), not on the text and the nested records' leaves: the
    writes took 13% less CPU time. Dictionary encoding likewise only on those: the texts and
    the records' leaves are mostly distinct, and trying a dictionary on each column chunk
    before falling back to plain took about 20% of a 100k-tweet write's CPU time for 5% of
    its size. Snappy is delta-rs' default, said again: WriterProperties without it means
    uncompressed.
    """
    return WriterProperties(
        compression="SNAPPY", max_row_group_size=BRONZE_ROW_GROUP_ROWS,
        default_column_properties=ColumnProperties(statistics_enabled="NONE",
                                                   dictionary_enabled=False),
        column_properties={name: ColumnProperties(statistics_enabled="PAGE",
                                                  dictionary_enabled=True)
                           for name in pruning_columns})


def _with_commit_retry(write: Callable[[], T]) -> T:
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            return write()
        except CommitFailedError:
            if attempt == COMMIT_ATTEMPTS:
                raise
            time.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")


def _sql_literal(value: Any) -> str:
    if isinstance(value, date):
        return f"'{value.isoformat()}'"
    if isinstance(value, int | float):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def in_predicate(column: str, values: Iterable[Any]) -> str:
    """A delta-rs SQL predicate ``column IN (...)`` with safely quoted literals."""
    literals = ", ".join(sorted({_sql_literal(v) for v in values}))
    return f'"{column}" IN ({literals})'


def _document(lake: Lake, uri: str, table: DeltaTable) -> None:
    """After a write through ``table`` (whose state that write brought up to date, so nothing is
    read again): the name and description, and the comments if the write did not carry them,
    committed only where they differ from the catalogue (``table_docs``)."""
    def document() -> bool:
        return table_docs.document(uri, lake.storage_options, table=table)
    try:
        document()
    except CommitFailedError:  # a concurrent writer won: look again from a fresh snapshot
        _with_commit_retry(lambda: table_docs.document(uri, lake.storage_options))


def open_table(lake: Lake, uri: str) -> DeltaTable | None:
    try:
        return DeltaTable(uri, storage_options=lake.storage_options or None)
    except TableNotFoundError:
        return None


def ensure_table(lake: Lake, uri: str, schema: pa.Schema,
                 partition_by: Sequence[str] | None = None) -> DeltaTable:
    """The table, created empty with ``schema`` unless it exists, safely against a concurrent
    creator: whoever loses the race to the first commit finds the table and goes on.

    Writing the first rows as the creating commit is what doubles data under a race: delta-rs
    retries the loser's commit as a plain append on top of the winner's rows. Created empty
    first, every write below is a predicate overwrite or a merge, which delta-rs checks against
    concurrent commits (``CommitFailedError``, retried from a fresh snapshot).
    """
    table = open_table(lake, uri)
    if table is not None:
        return table
    try:
        # Named and described (column comments too) in the commit that creates it: table_docs.
        return DeltaTable.create(
            uri, schema=_delta_schema(table_docs.annotate_schema(uri, schema)), mode="ignore",
            partition_by=list(partition_by) if partition_by else None,
            configuration=TABLE_PROPERTIES, storage_options=lake.storage_options or None,
            **table_docs.creation_options(uri))
    except DeltaError:
        table = open_table(lake, uri)
        if table is None:
            raise
        return table


def _delta_type(dtype: pa.DataType) -> pa.DataType:
    """Delta's timestamp is microseconds in UTC: any zone name for UTC (DuckDB says
    ``Etc/UTC``) or finer unit is said the way delta-rs' table creation accepts."""
    if pa.types.is_timestamp(dtype):
        return pa.timestamp("us", "UTC" if dtype.tz else None)
    if pa.types.is_struct(dtype):
        return pa.struct([f.with_type(_delta_type(f.type)) for f in dtype])
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return pa.list_(dtype.value_field.with_type(_delta_type(dtype.value_type)))
    return dtype


def _delta_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f.with_type(_delta_type(f.type)) for f in schema], metadata=schema.metadata)


def _arrow(df: pl.DataFrame) -> pa.Table:
    """``df`` as Arrow for delta-rs, strings as plain (large) strings. Not Polars' own string
    views, though they would save a copy of every string: delta-rs keeps the view type in the
    Parquet files' Arrow schema, and pyarrow datasets over the table (``lakehouse sql``, a
    notebook's ``to_pyarrow_dataset``) then fail filters on such columns ("no kernel matching
    input types (string, string_view)")."""
    return df.to_arrow()


# Frames are handed to delta-rs this many rows at a time (bronze's row group): the plain-string
# copy ``_arrow`` makes is then one slice's, not the whole frame's (a 100k-tweet bronze batch:
# 260 MiB at once, 0.6 s; in slices 0.4 s and about a third of the memory).
STREAM_BATCH_ROWS = BRONZE_ROW_GROUP_ROWS
Frames = pl.DataFrame | Callable[[], Iterable[pl.DataFrame]]


def _arrow_schema(schema: Mapping[str, Any]) -> pa.Schema:
    return _arrow(pl.DataFrame(schema=schema)).schema


class _Stream:
    """Frames as one Arrow stream for a single delta-rs write, ``STREAM_BATCH_ROWS`` at a time.

    delta-rs pulls the batches while it writes, so only a slice (and whatever the frames'
    producer holds) is in memory, and commits once at the end. An exception raised while
    producing the frames reaches delta-rs only as text (a ``DeltaError``, nothing committed):
    ``failure`` keeps it so the caller raises the real one.
    """

    def __init__(self, frames: Frames, schema: pa.Schema) -> None:
        self.frames, self.schema = frames, schema
        self.failure: Exception | None = None

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.schema, self._batches())

    def _batches(self) -> Iterator[pa.RecordBatch]:
        frames = [self.frames] if isinstance(self.frames, pl.DataFrame) else self.frames()
        try:
            for frame in frames:
                for offset in range(0, frame.height, STREAM_BATCH_ROWS):
                    for batch in _arrow(frame.slice(offset, STREAM_BATCH_ROWS)).to_batches():
                        # The schema's field metadata (column comments) rides on every batch.
                        yield pa.RecordBatch.from_arrays(batch.columns, schema=self.schema)
        except Exception as exc:
            self.failure = exc
            raise

    def write(self, table: DeltaTable, **options: Any) -> None:
        try:
            write_deltalake(table, self.reader(), **options)
        except Exception:
            if self.failure is not None:
                raise self.failure from None
            raise


def _write(lake: Lake, uri: str, df: Frames, *, mode: str,
           predicate: str | None = None, partition_by: Sequence[str] | None = None,
           writer_properties: WriterProperties | None = None,
           schema: Mapping[str, Any] | None = None) -> DeltaTable:
    """One write of ``df`` (a frame, or a function giving the frames of ``schema`` one at a
    time, called again when a concurrent writer wins the commit), streamed to delta-rs."""
    if schema is None:
        if not isinstance(df, pl.DataFrame):
            raise TypeError("frames given by a function need their schema")
        schema = df.schema
    # The column comments ride on the data, so a column's comment lands in the commit that
    # adds it (or changes with the catalogue) instead of a docs commit of its own.
    arrow_schema = table_docs.annotate_schema(uri, _arrow_schema(schema))
    table = ensure_table(lake, uri, arrow_schema, partition_by)
    _Stream(df, arrow_schema).write(
        table,
        mode=mode,
        predicate=predicate,
        # New columns (a source field now kept) join the table; old rows read them as null.
        schema_mode="merge",
        writer_properties=writer_properties,
    )
    return table


def append_replacing_sources(lake: Lake, uri: str, df: Frames, sources: Iterable[str], *,
                             source_column: str = "_source_file",
                             partition_by: Sequence[str] | None = None,
                             writer_properties: WriterProperties | None = None,
                             schema: Mapping[str, Any] | None = None) -> DeltaTable | None:
    """Replace every row of ``sources`` with ``df`` (whose rows all come from ``sources``), in
    one commit. Returns the table as the write left it (None when ``sources`` is empty), so
    the caller reports on it without opening it again.

    ``df`` may be a function yielding the rows a bounded frame at a time (of ``schema``), for
    a load too large to hold at once: delta-rs writes each as it comes and commits once at the
    end, so a failure on the way leaves the table as it was, and a rerun replaces the sources'
    rows again. The function is called again if a concurrent writer wins the commit.
    """
    sources = list(sources)
    if not sources:
        return None
    if isinstance(df, pl.DataFrame) and df.is_empty():
        # Nothing to add: a commit would only delete the sources' rows. A table holding none
        # (a quarantine on a clean batch: nearly always) is left alone, without an empty
        # commit on every load (each one a file more in a log every open lists).
        table = open_table(lake, uri)
        if table is not None and not _may_hold(table, source_column, sources):
            return table
    predicate = in_predicate(source_column, sources)
    table = _with_commit_retry(lambda: _write(lake, uri, df, mode="overwrite",
                                              predicate=predicate, partition_by=partition_by,
                                              writer_properties=writer_properties,
                                              schema=schema))
    _document(lake, uri, table)
    return table


def add_actions(table: DeltaTable) -> pa.Table:
    """The table's active files (delta-rs' add actions, statistics flattened), one row each.

    Read as the Arrow stream delta-rs gives: ``pa.table`` on it first asks whether it is a
    pandas DataFrame, which imports pandas, 0.6 s (0.25 s of CPU) in a process that never uses
    it, at the first bronze or quarantine write or row count of every run."""
    return pa.RecordBatchReader.from_stream(table.get_add_actions(flatten=True)).read_all()


def _may_hold(table: DeltaTable, column: str, values: Sequence[str]) -> bool:
    """Whether any active file of ``table`` may hold a row whose ``column`` is one of
    ``values``, by the files' min/max statistics (a file without them may). A string's
    statistics may be cut short: a value starting with the max it reads is taken as inside."""
    actions = add_actions(table)
    if not actions.num_rows:
        return False
    names = (f"min.{column}", f"max.{column}")
    if not all(name in actions.column_names for name in names):
        return True
    for low, high in zip(*(actions.column(name).to_pylist() for name in names), strict=True):
        if low is None or high is None:
            return True
        if any(low <= v and (v <= high or v.startswith(high)) for v in values):
            return True
    return False


def replace_partitions(lake: Lake, uri: str, df: pl.DataFrame, column: str,
                       values: Iterable[Any]) -> None:
    """Replace the partitions ``column IN values`` with ``df`` in one commit.

    A value with no rows in ``df`` empties that partition, which is what a rebuild of a day
    whose messages all disappeared must do.
    """
    values = list(values)
    if not values:  # no partition named: nothing to replace (and "IN ()" is not SQL)
        return
    predicate = in_predicate(column, values)
    table = _with_commit_retry(lambda: _write(lake, uri, df, mode="overwrite",
                                              predicate=predicate, partition_by=[column]))
    _document(lake, uri, table)


def replace_partitions_streamed(lake: Lake, uri: str, schema: pa.Schema,
                                batches: Callable[[], Iterable[pa.RecordBatch]], column: str,
                                values: Iterable[Any]) -> None:
    """``replace_partitions`` for data too large to hold at once: ``batches()`` yields it (for
    example a day at a time) while delta-rs writes, still in one commit. It is called again if
    a concurrent writer wins the commit."""
    values = list(values)
    if not values:
        return
    predicate = in_predicate(column, values)
    schema = table_docs.annotate_schema(uri, schema)  # the comments ride on the data, as _write

    def write() -> DeltaTable:
        table = ensure_table(lake, uri, schema, [column])
        write_deltalake(table, pa.RecordBatchReader.from_batches(schema, batches()),
                        mode="overwrite", predicate=predicate, schema_mode="merge")
        return table
    _document(lake, uri, _with_commit_retry(write))


def overwrite_table(lake: Lake, uri: str, df: pl.DataFrame | Callable[[], pa.RecordBatchReader],
                    partition_by: Sequence[str] | None = None,
                    writer_properties: WriterProperties | None = None) -> None:
    """Replace the whole table in one commit (snapshots, gold models); time travel keeps the old.

    ``df`` may be a function opening a stream of batches (a query's result), so a big table is
    written without being whole in memory; it is called again if the commit is retried.
    ``writer_properties``: how the Parquet files are written (delta-rs' defaults when None).
    """
    def write() -> DeltaTable:
        data: pa.Table | pa.RecordBatchReader
        if callable(df):
            reader = df()
            # The comments ride on the data: a schema overwrite would otherwise drop them each time.
            schema = table_docs.annotate_schema(uri, reader.schema)
            data = pa.RecordBatchReader.from_batches(schema, (
                pa.RecordBatch.from_arrays(batch.columns, schema=schema) for batch in reader))
        else:
            data = table_docs.annotate(uri, _arrow(df))
        table = ensure_table(lake, uri, data.schema, partition_by)
        write_deltalake(table, data, mode="overwrite", schema_mode="overwrite",
                        partition_by=list(partition_by) if partition_by else None,
                        writer_properties=writer_properties)
        return table
    _document(lake, uri, _with_commit_retry(write))


def merge_on_keys(lake: Lake, uri: str, df: pl.DataFrame, keys: Sequence[str],
                  partition_by: Sequence[str] | None = None,
                  table: DeltaTable | None = None) -> DeltaTable:
    """Upsert ``df`` on ``keys``: matching rows are updated, new ones inserted. Returns the
    table as the merge left it.

    ``streamed_exec=False`` lets delta-rs derive a pruning predicate from the source batch
    (the partitions and key ranges it touches), so a merge costs in proportion to the batch.
    ``table``: the table already opened (a merge brings its state up to date), so a run that
    reads and merges a table several times opens it once: every open lists the table's whole
    ``_delta_log`` on a local lake. A commit retried after a concurrent writer won opens it
    afresh.
    """
    # Once, not once per call and per commit attempt; with the comments, as ``_write``.
    data = table_docs.annotate(uri, _arrow(df))
    condition = " AND ".join(f's."{k}" = t."{k}"' for k in keys)
    given = [table] if table is not None else []

    def merge() -> DeltaTable:
        target = given.pop() if given else ensure_table(lake, uri, data.schema, partition_by)
        (
            target.merge(data, predicate=condition, source_alias="s", target_alias="t",
                         streamed_exec=False, merge_schema=True)
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute()
        )
        return target
    merged = _with_commit_retry(merge)
    _document(lake, uri, merged)
    return merged


def scan(lake: Lake, uri: str, table: DeltaTable | None = None) -> pl.LazyFrame:
    """A lazy scan of a Delta table; filters on partition columns prune files (and filters on
    other columns, files by their statistics). ``table``: the table already opened."""
    if table is not None:
        return pl.scan_delta(table, storage_options=lake.storage_options or None)
    return pl.scan_delta(uri, storage_options=lake.storage_options or None)


def row_count(table: DeltaTable) -> int:
    """Rows of the table's current version, from the log's file statistics (no data read)."""
    actions = add_actions(table)
    return int(pa.compute.sum(actions["num_records"]).as_py() or 0) if actions.num_rows else 0


def delta_metadata(lake: Lake, uri: str, preview: pl.DataFrame | None = None,
                   table: DeltaTable | None = None) -> dict[str, Any]:
    """What every Delta asset reports: row count, URI, Delta version, a Markdown preview.
    ``table``: the table already opened (at the version to report), so it is not read again."""
    import dagster as dg  # kept local so transforms and benches never import Dagster

    if table is None:
        table = DeltaTable(uri, storage_options=lake.storage_options or None)
    meta: dict[str, Any] = {
        "dagster/row_count": row_count(table),
        "dagster/uri": uri,
        "delta_version": table.version(),
    }
    if preview is not None and preview.height:
        # Rows are outside text: a pasted token must not reach the run database.
        meta["preview"] = dg.MetadataValue.md(redact(_markdown(preview.head(10))))
    return meta


def _markdown(df: pl.DataFrame) -> str:
    header = "| " + " | ".join(df.columns) + " |"
    rule = "| " + " | ".join("---" for _ in df.columns) + " |"
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in df.iter_rows()]
    return "\n".join([header, rule, *rows])


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


def replace_where(lake: Lake, uri: str, df: pl.DataFrame, predicate: str) -> None:
    """Replace the rows matching ``predicate`` (a delta-rs SQL predicate) with ``df``, in one
    commit: e.g. every credit of the titles whose answer changed."""
    _with_commit_retry(lambda: _write(lake, uri, df, mode="overwrite", predicate=predicate))
