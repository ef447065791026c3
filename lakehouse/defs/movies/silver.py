"""Raw snapshot versions to silver Delta tables: the work behind the silver movie assets.

Each function reads one landed raw version (streamed from a local copy), calls the pure
transform, writes the table in one commit and the bad rows to quarantine, and says what it did.
No Dagster here, so the benchmark runs exactly this code.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from lakehouse.defs.movies.snapshots import (
    LandingState,
    built_from,
    gunzipped,
    local_copy,
    write_quarantine,
    write_snapshot_table,
)
from lakehouse.lake.location import Lake
from lakehouse.transforms.imdb import IMDB_CSV_OPTIONS, ImdbTable, quarantine_rows
from lakehouse.transforms.movielens import (
    MOVIELENS_CSV_OPTIONS,
    MOVIELENS_TABLES,
    movielens_tag_counts,
)

Log = Callable[[str], None]


@dataclass(frozen=True)
class SilverOutcome:
    table: str
    uri: str
    changed: bool
    source: str
    quarantined: int = 0


def _noop(_: str) -> None:
    return None


def scan_imdb(path: Path, *, with_index: bool = False) -> pl.LazyFrame:
    return pl.scan_csv(path, row_index_name="_index" if with_index else None, **IMDB_CSV_OPTIONS)


def build_imdb_table(lake: Lake, spec: ImdbTable, state: LandingState,
                     log: Log = _noop) -> SilverOutcome:
    """One IMDB dataset version to its silver table; a no-op when already built from it."""
    uri = lake.table_uri("silver", spec.table)
    if built_from(lake, uri) == state.version_tag:
        log(f"{spec.table}: already built from {state.key}; nothing to do")
        return SilverOutcome(spec.table, uri, False, state.key)
    with local_copy(lake, state.key) as gz, gunzipped(gz) as tsv:
        log(f"{spec.table}: streaming {state.key} ({state.size / 2**20:.1f} MiB gzip)")
        write_snapshot_table(lake, uri, spec.transform(scan_imdb(tsv)), state.version_tag)
        bad = quarantine_rows(scan_imdb(tsv, with_index=True), spec.checks,
                              source_file=state.key, source="imdb", table=spec.table).collect()
    quarantined = write_quarantine(lake, bad, state.key)
    if quarantined:
        log(f"{spec.table}: {quarantined} rows quarantined")
    return SilverOutcome(spec.table, uri, True, state.key, quarantined)


MOVIELENS_SILVER = (*(t.table for t in MOVIELENS_TABLES), "movielens_tag_counts")


def _extract(zip_path: Path, folder: Path) -> dict[str, Path]:
    """Stream the CSV members out of the zip: ``{"ratings.csv": path, ...}``."""
    found: dict[str, Path] = {}
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            name = Path(info.filename).name
            if name.endswith(".csv") and not info.is_dir():
                dest = folder / name
                with zf.open(info) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out, 8 << 20)
                found[name] = dest
    return found


def build_movielens_tables(lake: Lake, state: LandingState, tables: set[str] | None = None,
                           log: Log = _noop) -> list[SilverOutcome]:
    """One MovieLens release zip to its silver tables; each a no-op when already built from it."""
    wanted = set(MOVIELENS_SILVER) if tables is None else set(tables)
    outcomes: list[SilverOutcome] = []
    todo = []
    for name in MOVIELENS_SILVER:
        if name not in wanted:
            continue
        uri = lake.table_uri("silver", name)
        if built_from(lake, uri) == state.version_tag:
            log(f"{name}: already built from {state.key}; nothing to do")
            outcomes.append(SilverOutcome(name, uri, False, state.key))
        else:
            todo.append(name)
    if not todo:
        return outcomes
    with local_copy(lake, state.key) as zip_path, \
            tempfile.TemporaryDirectory(prefix="lakehouse-ml-") as tmp:
        members = _extract(zip_path, Path(tmp))
        for spec in MOVIELENS_TABLES:
            needs_tags = spec.table == "movielens_tags" and "movielens_tag_counts" in todo
            if spec.table not in todo and not needs_tags:
                continue
            path = members.get(spec.member)
            if path is None:
                raise FileNotFoundError(f"{state.key} has no {spec.member}")
            source_file = f"{state.key}#{spec.member}"
            uri = lake.table_uri("silver", spec.table)
            raw = pl.scan_csv(path, **MOVIELENS_CSV_OPTIONS)
            if spec.table in todo:
                log(f"{spec.table}: streaming {spec.member}")
                write_snapshot_table(lake, uri, spec.transform(raw), state.version_tag)
                bad = quarantine_rows(
                    pl.scan_csv(path, row_index_name="_index", **MOVIELENS_CSV_OPTIONS),
                    spec.checks, source_file=source_file, source="movielens", table=spec.table,
                    separator=",", null_text="").collect()
                quarantined = write_quarantine(lake, bad, source_file)
                outcomes.append(SilverOutcome(spec.table, uri, True, state.key, quarantined))
            if needs_tags:
                counts_uri = lake.table_uri("silver", "movielens_tag_counts")
                log("movielens_tag_counts: counting tags")
                write_snapshot_table(lake, counts_uri, movielens_tag_counts(spec.transform(raw)),
                                     state.version_tag)
                outcomes.append(SilverOutcome("movielens_tag_counts", counts_uri, True,
                                              state.key))
    return outcomes
