"""Silver run in the same process right after the bronze load of the same files (the sensor's
runs) starts from the rows that load kept instead of reading them back from bronze: every
silver table is the same as from bronze, silver reads bronze whenever bronze may hold
something else, and a failure in either half leaves a state that a rerun completes."""

import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from deltalake.exceptions import DeltaError

from lakehouse.defs.twitter.assets import twitter_bronze, twitter_silver
from lakehouse.lake.delta import append_replacing_sources, scan
from lakehouse.lake.location import Lake
from lakehouse.lake.resource import LakeResource
from lakehouse.load import twitter as load
from lakehouse.load.twitter import (
    BRONZE,
    HASHTAGS,
    MATCHING_RULES,
    MEDIA,
    MENTIONS,
    SENTIMENT,
    TWEETS,
    URLS,
    USERS,
    load_bronze,
    load_silver,
)
from lakehouse.transforms.twitter import BRONZE_SCHEMA
from lakehouse_tests.twitter.test_pipeline import land

FIXTURES = Path(__file__).parents[1] / "fixtures" / "twitter"
SILVER_KEYS = {TWEETS: ["id"], USERS: ["id"], MEDIA: ["media_key"], SENTIMENT: ["id"],
               HASHTAGS: ["tweet_id", "position"], MENTIONS: ["tweet_id", "position"],
               URLS: ["tweet_id", "position"], MATCHING_RULES: ["tweet_id", "rule_id"]}


def malformed_batch() -> bytes:
    """The stream fixture again with a blank line, a cut line, a line without a tweet and a
    tweet whose id is not a tweet id (quarantined; the rest goes on)."""
    lines = (FIXTURES / "stream.ndjson").read_text(encoding="utf-8").splitlines()
    bad_id = json.loads(lines[0])
    bad_id["data"]["id"] = "01x"
    return "\n".join([*lines[:2], "", '{"data": {"id": "1", "text": "cut', '{"errors": []}',
                      json.dumps(bad_id), *lines[2:]]).encode() + b"\n"


def land_fixtures(lake: Lake) -> list[str]:
    """Search pages (expansions: a long post retweeted, a quote, edits, media, bad ids) and
    stream lines (matching rules, a second edit), one raw file each, in landing order."""
    return [land(lake, "search_page_expansions.json", 0), land(lake, "search_page_1.json", 1),
            land(lake, "stream.ndjson", 2), land(lake, "stream_filtered.ndjson", 3),
            land(lake, "search_page_2.json", 4),
            land(lake, "malformed.ndjson", 5, malformed_batch())]


def silver(lake: Lake) -> dict[tuple[str, str], pl.DataFrame]:
    return {table: scan(lake, lake.table_uri(*table)).collect().sort(keys)
            for table, keys in SILVER_KEYS.items()}


def assert_same_silver(got: Lake, expected: Lake) -> None:
    want = silver(expected)
    for table, frame in silver(got).items():
        assert frame.height > 0, table
        assert frame.equals(want[table].select(frame.columns)), table


def lakes(tmp_path: Path) -> tuple[Lake, Lake]:
    return Lake.from_env(str(tmp_path / "kept")), Lake.from_env(str(tmp_path / "read"))


def test_silver_from_the_rows_the_bronze_load_kept_equals_silver_read_back_from_bronze(
        tmp_path: Path) -> None:
    kept, read = lakes(tmp_path)
    for lake, keep in ((kept, True), (read, False)):
        keys = land_fixtures(lake)
        for key in keys[:-2]:  # one run per file, as the sensor asks
            load_bronze(lake, [key], keep_for_silver=keep)
            assert load_silver(lake, [key]).read_bronze is not keep
        # A run of two files: the silver load names them in another order.
        load_bronze(lake, keys[-2:], keep_for_silver=keep)
        assert load_silver(lake, keys[:-3:-1]).read_bronze is not keep

    assert_same_silver(kept, read)
    assert scan(kept, kept.table_uri("quarantine", "twitter_quarantine")).collect().height >= 4


def test_silver_reads_bronze_back_when_the_load_kept_other_files_or_bronze_changed_since(
        lake: Lake) -> None:
    page, batch = land(lake, "search_page_1.json", 0), land(lake, "stream.ndjson", 1)
    load_bronze(lake, [page], keep_for_silver=True)
    assert load_silver(lake, [batch]).read_bronze  # another file: nothing kept for it
    assert load_silver(lake, [page]).read_bronze  # taken (and dropped) by the load before

    load_bronze(lake, [batch], keep_for_silver=True)
    # Before silver runs, another writer replaces the batch's rows in bronze (here without its
    # first record): silver must be built from what bronze holds, not from what was kept.
    uri = lake.table_uri(*BRONZE)
    rows = scan(lake, uri).filter(pl.col("_source_file") == batch).collect().sort("_record_index")
    dropped = rows.row(0, named=True)["tweets"][0]["id"]
    append_replacing_sources(lake, uri, rows.slice(1).select(list(BRONZE_SCHEMA)), [batch])

    loaded = load_silver(lake, [batch])
    assert loaded.read_bronze
    assert dropped not in loaded.tweets.get_column("id").to_list()
    assert loaded.tweets.height > 0


def test_a_failure_in_either_half_leaves_a_state_that_a_rerun_completes(
        lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = Lake.from_env(str(tmp_path / "expected"))
    done = land_fixtures(expected)
    for batch in ([done[0]], [done[1]], done[2:4], [done[4]], [done[5]]):  # as below
        load_bronze(expected, batch)
        load_silver(expected, batch)
    keys = land_fixtures(lake)
    for key in keys[:2]:
        load_bronze(lake, [key], keep_for_silver=True)
        load_silver(lake, [key])

    # Bronze failing half way (a file listed but unreadable) keeps nothing and commits nothing.
    monkeypatch.setattr(load, "DECODE_BYTES", 2000)  # the first file's pieces written first
    missing = keys[3]
    content = lake.read_bytes(missing)
    Path(lake.uri(missing)).unlink()
    with pytest.raises(FileNotFoundError):
        load_bronze(lake, keys[2:4], keep_for_silver=True)
    assert load_silver(lake, keys[2:4]).tweets.is_empty()  # bronze holds neither file
    lake.write_bytes(missing, content)
    load_bronze(lake, keys[2:4], keep_for_silver=True)

    # Silver failing on one table after the kept rows were taken: its rerun reads bronze.
    blocked = Path(lake.table_uri(*HASHTAGS))
    blocked.rename(blocked.with_name("moved"))
    blocked.write_text("not a table")
    with pytest.raises(DeltaError, match="twitter_hashtags"):
        load_silver(lake, keys[2:4])
    blocked.unlink()
    blocked.with_name("moved").rename(blocked)
    assert load_silver(lake, keys[2:4]).read_bronze

    for key in keys[4:]:
        load_bronze(lake, [key], keep_for_silver=True)
        assert not load_silver(lake, [key]).read_bronze
    assert_same_silver(lake, expected)


def test_the_sensors_run_builds_silver_from_its_bronze_load_and_silver_alone_reads_bronze(
        lake: Lake) -> None:
    key = land(lake, "stream.ndjson", 0)
    config = dg.RunConfig(ops={"twitter_bronze": {"config": {"files": [key]}},
                               "twitter_silver": {"config": {"files": [key]}}})

    def silver_read_bronze(result: dg.ExecuteInProcessResult) -> bool:
        tweets = [m for m in result.asset_materializations_for_node("twitter_silver")
                  if m.asset_key == dg.AssetKey(TWEETS)]
        return tweets[0].metadata["read_bronze"].value

    both = dg.materialize([twitter_bronze, twitter_silver], run_config=config,
                          resources={"lake": LakeResource()})
    assert both.success and not silver_read_bronze(both)
    rows = scan(lake, lake.table_uri(*TWEETS)).collect().sort("id")

    alone = dg.materialize([twitter_silver], run_config=dg.RunConfig(
        ops={"twitter_silver": {"config": {"files": [key]}}}), resources={"lake": LakeResource()})
    assert alone.success and silver_read_bronze(alone)
    assert scan(lake, lake.table_uri(*TWEETS)).collect().sort("id").equals(rows)
