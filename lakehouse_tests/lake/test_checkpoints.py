"""A table written every few minutes opens from a recent checkpoint: opening it replays a
bounded number of commits, however many writes it has had (steady-state cost)."""

import json
from pathlib import Path

import polars as pl
from deltalake import DeltaTable

from lakehouse.lake.delta import TABLE_PROPERTIES, append_replacing_sources, merge_on_keys
from lakehouse.lake.location import Lake
from lakehouse.lake.maintenance import maintain_table

INTERVAL = int(TABLE_PROPERTIES["delta.checkpointInterval"])


def _commits_since_checkpoint(uri: str) -> int:
    log = Path(uri, "_delta_log")
    last = log / "_last_checkpoint"
    since = json.loads(last.read_text())["version"] if last.exists() else -1
    return DeltaTable(uri).version() - since


def _rows(i: int) -> pl.DataFrame:
    return pl.DataFrame({"id": [i], "day": ["2026-11-10"], "_source_file": [f"raw/x/{i}.json"]})


def test_a_table_written_often_is_checkpointed_every_few_commits(lake: Lake) -> None:
    bronze = lake.table_uri("bronze", "events")
    silver = lake.table_uri("silver", "events")
    for i in range(3 * INTERVAL + 3):
        append_replacing_sources(lake, bronze, _rows(i), [f"raw/x/{i}.json"],
                                 partition_by=["day"])
        merge_on_keys(lake, silver, _rows(i).drop("_source_file"), ["id"])
        for uri in (bronze, silver):
            assert _commits_since_checkpoint(uri) <= INTERVAL
    for uri in (bronze, silver):
        assert DeltaTable(uri).metadata().configuration["delta.checkpointInterval"] == \
            str(INTERVAL)
        assert pl.read_delta(uri).height == 3 * INTERVAL + 3


def test_the_upkeep_gives_a_table_created_before_the_setting_its_checkpoints(lake: Lake) -> None:
    uri = lake.table_uri("bronze", "events")
    # A table as the lake held it before: created without the property (delta-rs' default,
    # a checkpoint every 100 commits).
    DeltaTable.create(uri, schema=_rows(0).to_arrow().schema, partition_by=["day"])
    for i in range(INTERVAL + 2):
        append_replacing_sources(lake, uri, _rows(i), [f"raw/x/{i}.json"])
    assert _commits_since_checkpoint(uri) > INTERVAL

    maintain_table(lake, uri, retention_hours=0)
    assert DeltaTable(uri).metadata().configuration["delta.checkpointInterval"] == str(INTERVAL)
    for i in range(2 * INTERVAL):
        append_replacing_sources(lake, uri, _rows(100 + i), [f"raw/x/{100 + i}.json"])
        assert _commits_since_checkpoint(uri) <= INTERVAL
    assert pl.read_delta(uri).height == 3 * INTERVAL + 2
    maintain_table(lake, uri, retention_hours=0)  # a second upkeep leaves the property alone
    assert DeltaTable(uri).metadata().configuration["delta.checkpointInterval"] == str(INTERVAL)
