"""The ledger of loaded raw files: which source files a table has loaded, kept in the lake.

What is loaded is decided by this ledger, never by the order of keys: a file landed late, out of
order or by a concurrent writer (a stranded webhook segment sealed under its old opening time,
a second replica) is simply a landed key the ledger does not hold yet, and is loaded once.

One small Delta table per loading table, at ``<root>/_ledger/<layer>/<table>`` (for example
``_ledger/bronze/telegram_updates``), outside the layers so catalogues and dbt never see it:

| column | type | meaning |
|---|---|---|
| ``source_file`` | String | the raw key (or, for a source outside the lake, its identity) |
| ``loaded_at`` | Datetime(us, UTC) | when the load that wrote it committed |

A load writes its table first and the ledger right after. The table replaces the rows of a
source file on every load, so a crash between the two commits only makes the file load again,
never twice. The ledger is compacted when it holds many small files, so a sensor reading it
every 30 seconds reads a few files whatever the history.
"""

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from lakehouse.lake.delta import append_replacing_sources, open_table
from lakehouse.lake.location import LAYERS, Lake

LEDGER_ROOT = "_ledger"
SCHEMA = {"source_file": pl.String, "loaded_at": pl.Datetime("us", "UTC")}
COMPACT_AT_FILES = 32
RETENTION_HOURS = 7 * 24


@dataclass(frozen=True)
class Ledger:
    """The ledger of one table (``layer``/``table``) of one lake."""

    lake: Lake
    layer: str
    table: str

    def __post_init__(self) -> None:
        if self.layer not in LAYERS:
            raise ValueError(f"unknown layer {self.layer!r}; expected one of {LAYERS}")

    @property
    def uri(self) -> str:
        return self.lake.uri(f"{LEDGER_ROOT}/{self.layer}/{self.table}")

    def loaded(self) -> set[str]:
        """Every source file recorded as loaded."""
        if open_table(self.lake, self.uri) is None:
            return set()
        frame = pl.read_delta(self.uri, columns=["source_file"],
                              storage_options=self.lake.storage_options or None)
        return set(frame.get_column("source_file").to_list())

    def unloaded(self, keys: Iterable[str]) -> list[str]:
        """``keys`` the ledger does not hold, sorted."""
        done = self.loaded()
        return sorted(k for k in set(keys) if k not in done)

    def record(self, keys: Collection[str], loaded_at: datetime | None = None) -> None:
        """Record ``keys`` as loaded (idempotent: a key recorded again replaces its row)."""
        if not keys:
            return
        moment = loaded_at or datetime.now(UTC)
        frame = pl.DataFrame({"source_file": sorted(set(keys)),
                              "loaded_at": [moment] * len(set(keys))}, schema=SCHEMA)
        table = append_replacing_sources(self.lake, self.uri, frame,
                                         frame["source_file"].to_list(),
                                         source_column="source_file")
        self._compact_when_fragmented(table)

    def _compact_when_fragmented(self, table: DeltaTable | None) -> None:
        """``table``: as the record left it (not opened again: an open lists the whole log)."""
        if table is None or len(table.file_uris()) < COMPACT_AT_FILES:
            return
        # A concurrent recorder may win the race: compaction is an optimisation, its loser
        # simply leaves the files for the next record.
        try:
            table.optimize.compact()
            table.create_checkpoint()
            table.vacuum(retention_hours=RETENTION_HOURS, dry_run=False)
        except DeltaError:
            return
