"""Bronze decodes and writes a big stream batch a piece at a time, in one commit: the rows and
the quarantine are what a whole-file load gives, and a load that fails half way shows nothing."""

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable

from lakehouse.lake.delta import scan
from lakehouse.lake.location import Lake
from lakehouse.load import twitter as load
from lakehouse.load.twitter import BRONZE, QUARANTINE, bronze_ledger, load_bronze
from lakehouse.sources.twitter import stream_key

FIXTURES = Path(__file__).parents[1] / "fixtures" / "twitter"
GOOD = [line for line in (FIXTURES / "stream.ndjson").read_text(encoding="utf-8").splitlines()
        if line]
LANDED = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)


def batch(minute: int, copies: int) -> tuple[str, bytes]:
    """A stream batch: the fixture's lines ``copies`` times (each tweet under a new id), a
    blank line and a cut line in the middle."""
    lines = []
    for copy in range(copies):
        for line in GOOD:
            record = json.loads(line)
            record["data"]["id"] = str(int(record["data"]["id"]) + copy)
            lines.append(json.dumps(record))
        if copy == copies // 2:
            lines += ["", '{"data": {"id": "1", "text": "cut']
    key = stream_key(f"20261117T09{minute:02d}00000000Z-1-{minute:04d}.ndjson",
                     LANDED.replace(minute=minute))
    return key, ("\n".join(lines) + "\n").encode()


def table(lake: Lake, name: tuple[str, str]) -> pl.DataFrame:
    return scan(lake, lake.table_uri(*name)).collect().sort("_source_file", "_record_index")


def test_a_batch_decoded_in_pieces_is_one_commit_with_its_lines_numbered(
        lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    key, data = batch(1, copies=20)
    lake.write_bytes(key, data)
    whole = load_bronze(lake, [key])
    expected_bronze, expected_quarantine = table(lake, BRONZE), table(lake, QUARANTINE)
    version = DeltaTable(lake.table_uri(*BRONZE)).version()

    monkeypatch.setattr(load, "DECODE_BYTES", 3000)  # a few lines a piece: dozens of pieces
    pieces = load_bronze(lake, [key])

    assert DeltaTable(lake.table_uri(*BRONZE)).version() == version + 1
    assert (pieces.records, pieces.bronze_rows, pieces.tweets, pieces.quarantined) == \
        (whole.records, whole.bronze_rows, whole.tweets, whole.quarantined)
    bronze = table(lake, BRONZE)
    assert bronze.drop("_ingested_at").equals(expected_bronze.drop("_ingested_at"))
    cut = len(GOOD) * 11 + 1  # the line after the blank one
    assert table(lake, QUARANTINE)["_record_index"].to_list() == [cut]
    assert expected_quarantine["_record_index"].to_list() == [cut]
    assert bronze.height == len(GOOD) * 20


def test_a_load_failing_half_way_commits_nothing_and_a_rerun_loads_each_file_once(
        lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load, "DECODE_BYTES", 3000)
    first, first_data = batch(1, copies=10)
    second, second_data = batch(2, copies=10)
    lake.write_bytes(first, first_data)
    # The second file is listed but cannot be read: the first's pieces are already written.
    with pytest.raises(FileNotFoundError):
        load_bronze(lake, [first, second])
    assert table(lake, BRONZE).height == 0
    assert bronze_ledger(lake).loaded() == set()

    lake.write_bytes(second, second_data)
    stats = load_bronze(lake, [first, second])
    bronze = table(lake, BRONZE)
    assert stats.bronze_rows == bronze.height == 2 * len(GOOD) * 10
    assert bronze.select("_source_file", "_record_index").is_duplicated().sum() == 0
    assert bronze_ledger(lake).loaded() == {first, second}
