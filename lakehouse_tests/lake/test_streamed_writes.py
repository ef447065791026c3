"""A bronze load handed to delta-rs as a stream of bounded frames: one commit for the whole
load, nothing visible when producing the rows fails half way, and a rerun loads each file once."""

from collections.abc import Iterator

import polars as pl
import pytest
from deltalake import DeltaTable

from lakehouse.lake.delta import STREAM_BATCH_ROWS, append_replacing_sources
from lakehouse.lake.location import Lake

SCHEMA = {"_source_file": pl.String, "_record_index": pl.Int64, "record": pl.String}
FILES = ["raw/x/2026/11/17/a.ndjson", "raw/x/2026/11/17/b.ndjson"]
ROWS_PER_FILE = 2 * STREAM_BATCH_ROWS + 5  # more than one batch per frame


def _file_rows(source: str, version: str) -> pl.DataFrame:
    return pl.DataFrame({"_source_file": source,
                         "_record_index": range(ROWS_PER_FILE),
                         "record": [f"{version} {i}" for i in range(ROWS_PER_FILE)]},
                        schema=SCHEMA)


def _frames(version: str, fail_after: int | None = None) -> Iterator[pl.DataFrame]:
    """Each file's rows in three frames; with ``fail_after``, the storage fails after that
    many frames."""
    produced = 0
    for source in FILES:
        rows = _file_rows(source, version)
        for part in range(3):
            if produced == fail_after:
                raise OSError("raw storage unreachable")
            yield rows.filter(pl.col("_record_index") % 3 == part)
            produced += 1


def _table(uri: str) -> pl.DataFrame:
    return pl.read_delta(uri).sort("_source_file", "_record_index")


def test_a_load_of_many_frames_is_one_commit_with_every_row_once(lake: Lake) -> None:
    uri = lake.table_uri("bronze", "records")
    append_replacing_sources(lake, uri, lambda: _frames("v1"), FILES, schema=SCHEMA)
    first = DeltaTable(uri).version()

    append_replacing_sources(lake, uri, lambda: _frames("v2"), FILES, schema=SCHEMA)

    assert DeltaTable(uri).version() == first + 1  # six frames, many batches: one commit
    rows = _table(uri)
    assert rows.height == 2 * ROWS_PER_FILE
    assert rows.select("_source_file", "_record_index").is_duplicated().sum() == 0
    assert set(rows["record"].str.split(" ").list.first()) == {"v2"}


def test_a_failure_half_way_leaves_the_table_as_it_was_and_a_rerun_loads_once(
        lake: Lake) -> None:
    uri = lake.table_uri("bronze", "records")
    append_replacing_sources(lake, uri, lambda: _frames("v1"), FILES, schema=SCHEMA)
    before, version = _table(uri), DeltaTable(uri).version()

    # The caller sees the real error, not delta-rs' text of it.
    with pytest.raises(OSError, match="raw storage unreachable"):
        append_replacing_sources(lake, uri, lambda: _frames("v2", fail_after=4), FILES,
                                 schema=SCHEMA)

    assert DeltaTable(uri).version() == version
    assert _table(uri).equals(before)  # no row of the half-written load, none lost

    append_replacing_sources(lake, uri, lambda: _frames("v2"), FILES, schema=SCHEMA)
    rows = _table(uri)
    assert rows.height == 2 * ROWS_PER_FILE
    assert set(rows["record"].str.split(" ").list.first()) == {"v2"}


def test_a_first_load_that_fails_creates_no_rows(lake: Lake) -> None:
    uri = lake.table_uri("bronze", "records")
    with pytest.raises(OSError):
        append_replacing_sources(lake, uri, lambda: _frames("v1", fail_after=2), FILES,
                                 schema=SCHEMA)
    assert pl.read_delta(uri).height == 0

    append_replacing_sources(lake, uri, lambda: _frames("v1"), FILES, schema=SCHEMA)
    assert _table(uri).height == 2 * ROWS_PER_FILE


def test_a_load_whose_files_have_no_rows_left_empties_them(lake: Lake) -> None:
    uri = lake.table_uri("bronze", "records")
    append_replacing_sources(lake, uri, lambda: _frames("v1"), FILES, schema=SCHEMA)
    append_replacing_sources(lake, uri, lambda: iter(()), FILES[:1], schema=SCHEMA)
    assert set(_table(uri)["_source_file"]) == {FILES[1]}
