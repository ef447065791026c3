"""Table upkeep on delta-rs: compact small files, checkpoint the log, vacuum old files.

A table written every five minutes gains a file (or a few) per write and a JSON commit per
write; readers then open thousands of small files and replay a long log. Compaction rewrites
the small files of each partition into few large ones, a checkpoint lets readers start from
one Parquet summary of the log, and vacuum deletes the files that no version within the
retention period still references (time travel beyond it is given up on purpose).

The log is kept for ``log_retention_hours`` (``delta.logRetentionDuration``; by default a day,
``LOG_RETENTION_HOURS``), not delta-rs' 30 days. Opening a table, and every commit, lists its
whole ``_delta_log`` folder on a local lake (about 5 us a file, measured), so the log's length
is paid on every open: a Twitter batch cost 1.39 s CPU on a lake with short logs and 3.66 s with
2,000 old commits in each table's log (about a week of 5-minute batches). A day of log keeps a
local lake's batches cheap at the price of time travel: a version whose commits are gone cannot
be loaded, though its files are kept for ``retention_hours`` (so a reader that opened a version
still finds its files).

A table merged on a key (its log holds a ``MERGE``) and partitioned by one column keeps its two
newest partitions (today's and yesterday's, the ones later batches still update: an edit
relinks the tweet it edits, minutes old) in files of about ``HOT_TARGET_FILE_BYTES`` ordered by
the merge key (``z_order`` on one column is a sort), and its older partitions compacted whole.
A merge rewrites every file holding a row it updates, and delta-rs skips the files whose key
range cannot match the batch's keys: compacted into one file, a day was rewritten whole by the
next batches' edits of earlier tweets (80 batches into a day: 24,300 rows copied to update 3,
0.3 s; at midnight the whole day, 85,280 rows, 1.07 s), while in key-ordered files of 1 MiB the
same merge copies the one file holding those ids (2,800 rows).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute  # noqa: F401  (registers pa.compute)
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError

from lakehouse.lake.delta import (
    HISTORY_SEARCHED,
    LOG_RETENTION_HOURS,
    TABLE_PROPERTIES,
    add_actions,
    commit_facts,
    log_retention,
    newest_data_commit,
)
from lakehouse.lake.location import Lake

DEFAULT_RETENTION_HOURS = 7 * 24
COMPACT_ATTEMPTS = 5
# Files of a hot partition (see the module's docstring). delta-rs aims at this many bytes of
# input, so the files come out smaller (about 390 KiB, 6,000 tweets, measured).
HOT_TARGET_FILE_BYTES = 1024 * 1024
HOT_PARTITIONS = 2
_MERGE_KEY = re.compile(r'\b[ts]\."?(\w+)"?\s*=\s*[ts]\."?(\w+)"?')


@dataclass(frozen=True)
class TableFiles:
    """The active data files of a table's current version."""

    files: int
    bytes: int


@dataclass(frozen=True)
class MaintenanceReport:
    before: TableFiles
    after: TableFiles
    files_compacted: int
    files_added: int
    files_vacuumed: int
    version_before: int
    version_after: int

    def as_metadata(self) -> dict[str, Any]:
        flat = asdict(self)
        return {
            "files_before": flat["before"]["files"],
            "bytes_before": flat["before"]["bytes"],
            "files_after": flat["after"]["files"],
            "bytes_after": flat["after"]["bytes"],
            "files_compacted": self.files_compacted,
            "files_added": self.files_added,
            "files_vacuumed": self.files_vacuumed,
            "delta_version_before": self.version_before,
            "delta_version_after": self.version_after,
        }


def active_files(table: DeltaTable) -> TableFiles:
    actions = add_actions(table)
    if not actions.num_rows:
        return TableFiles(0, 0)
    return TableFiles(actions.num_rows, int(pa.compute.sum(actions["size_bytes"]).as_py() or 0))


def _optimize(lake: Lake, uri: str,
              operation: Callable[[DeltaTable], dict[str, Any]]) -> dict[str, Any]:
    """Compaction commits like any writer: a concurrent write makes it lose the race, in which
    case it starts again from the new version (its work is idempotent)."""
    for attempt in range(1, COMPACT_ATTEMPTS + 1):
        table = DeltaTable(uri, storage_options=lake.storage_options or None)
        try:
            return operation(table)
        except CommitFailedError:
            if attempt == COMPACT_ATTEMPTS:
                raise
            time.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class HotLayout:
    """How a merged, partitioned table's newest partitions are laid out: ``partitions`` (values
    of ``column``) in files ordered by ``order_by``; ``changed``: whether any of them got a
    file since the last upkeep (else they are left as they are)."""

    column: str
    partitions: list[str]
    order_by: str
    changed: bool


def merge_key(history: list[dict[str, Any]], partition_columns: list[str]) -> str | None:
    """The first non-partition column of the newest ``MERGE``'s predicate, if any."""
    for commit in history:
        if commit.get("operation") != "MERGE":
            continue
        predicate = commit.get("operationParameters", {}).get("mergePredicate", "")
        for left, right in _MERGE_KEY.findall(predicate):
            if left == right and left not in partition_columns:
                return left
        return None
    return None


def hot_layout(table: DeltaTable) -> HotLayout | None:
    """The hot partitions of a table merged on a key and partitioned by one column; None for
    any other table (appended, replaced, unpartitioned: plain compaction suits them)."""
    partition_columns = table.metadata().partition_columns
    if len(partition_columns) != 1:
        return None
    history = table.history(HISTORY_SEARCHED)
    order_by = merge_key(history, partition_columns)
    if order_by is None:
        return None
    column = partition_columns[0]
    actions = add_actions(table)
    if not actions.num_rows:
        return None
    values = actions.column(f"partition.{column}").cast(pa.string())
    hot = sorted({v for v in values.to_pylist() if v is not None})[-HOT_PARTITIONS:]
    optimized = [c["timestamp"] for c in history if c.get("operation") == "OPTIMIZE"]
    in_hot = pa.compute.is_in(values, value_set=pa.array(hot, pa.string()))
    times = actions.column("modification_time").cast(pa.int64()).filter(in_hot).to_pylist()
    # Files written after the newest upkeep commit (or no upkeep in the retained log).
    changed = not optimized or any(t > max(optimized) for t in times)
    return HotLayout(column, hot, order_by, changed)


def _compact(lake: Lake, uri: str, target_size: int | None,
             hot_target_size: int) -> dict[str, Any]:
    """Compact the table; a merged table's hot partitions are ordered by its key in bounded
    files instead (``hot_layout``). The metrics of both passes, summed."""
    layout = hot_layout(DeltaTable(uri, storage_options=lake.storage_options or None))
    if layout is None:
        return _optimize(lake, uri, lambda t: t.optimize.compact(target_size=target_size))
    cold = _optimize(lake, uri, lambda t: t.optimize.compact(
        partition_filters=[(layout.column, "not in", layout.partitions)],
        target_size=target_size))
    if not layout.changed:
        return cold
    hot = _optimize(lake, uri, lambda t: t.optimize.z_order(
        [layout.order_by], partition_filters=[(layout.column, "in", layout.partitions)],
        target_size=hot_target_size))
    return {key: int(cold.get(key, 0)) + int(hot.get(key, 0))
            for key in ("numFilesAdded", "numFilesRemoved")}


def upkeep_properties(log_retention_hours: float) -> dict[str, str]:
    """``TABLE_PROPERTIES`` with this log retention. Writers clean the expired log themselves at
    each checkpoint (``delta.enableExpiredLogCleanup``, on by default), so the log stays as
    short between upkeeps too."""
    return {**TABLE_PROPERTIES, "delta.logRetentionDuration": log_retention(log_retention_hours)}


def _set_properties(lake: Lake, uri: str, properties: dict[str, str]) -> None:
    """Give a table created before ``properties`` existed (or with other values) those
    properties: how an existing lake takes them on, at its next upkeep."""
    for attempt in range(1, COMPACT_ATTEMPTS + 1):
        table = DeltaTable(uri, storage_options=lake.storage_options or None)
        configuration = table.metadata().configuration
        if all(configuration.get(k) == v for k, v in properties.items()):
            return
        try:
            # Facts are the project's own keys, unknown to Delta.
            table.alter.set_table_properties(properties, raise_if_not_exists=False)
            return
        except CommitFailedError:
            if attempt == COMPACT_ATTEMPTS:
                raise
            time.sleep(0.2 * 2**attempt)


def maintain_table(lake: Lake, uri: str, *, retention_hours: int = DEFAULT_RETENTION_HOURS,
                   target_size: int | None = None,
                   log_retention_hours: float = LOG_RETENTION_HOURS,
                   hot_target_size: int = HOT_TARGET_FILE_BYTES) -> MaintenanceReport:
    """Compact, checkpoint and vacuum one Delta table; the report holds before/after facts.
    ``log_retention_hours``: how long the log is kept (default a day); ``hot_target_size``:
    the file size a merged table's hot partitions are cut to (``hot_layout``)."""
    table = DeltaTable(uri, storage_options=lake.storage_options or None)
    before, version_before = active_files(table), table.version()
    # The newest data commit's facts (a snapshot's source version) kept as table properties
    # too, before the log that holds that commit is trimmed: readers of the facts find them
    # there once the commit is gone (``lakehouse.lake.snapshots.commit_property``).
    _set_properties(lake, uri, {**upkeep_properties(log_retention_hours),
                                **commit_facts(newest_data_commit(table))})
    metrics = _compact(lake, uri, target_size, hot_target_size)
    table = DeltaTable(uri, storage_options=lake.storage_options or None)
    table.create_checkpoint()
    # The retention is the project's setting, not delta-rs' 7-day floor, so it is not enforced
    # against the table property; a shorter one is the operator's explicit choice.
    vacuumed = table.vacuum(retention_hours=retention_hours, dry_run=False,
                            enforce_retention_duration=False)
    table.cleanup_metadata()  # the commits older than the retention, up to the checkpoint
    table = DeltaTable(uri, storage_options=lake.storage_options or None)
    return MaintenanceReport(
        before=before,
        after=active_files(table),
        files_compacted=int(metrics.get("numFilesRemoved", 0)),
        files_added=int(metrics.get("numFilesAdded", 0)),
        files_vacuumed=len(vacuumed),
        version_before=version_before,
        version_after=table.version(),
    )
