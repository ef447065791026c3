"""A landed raw file that cannot be read (not gzip, cut short, a truncated zip) fails only the
tables built from it, with a message naming the file; the other tables load."""

import dataclasses
import hashlib
import json

import dagster as dg
import pytest

from lakehouse.defs.movies.assets import imdb_silver_assets, movielens_silver
from lakehouse.lake.delta import scan
from lakehouse.lake.location import Lake
from lakehouse.lake.resource import LakeResource
from lakehouse.lake.snapshots import LandingState, state_key
from lakehouse.sources.movielens import MovieLensResource
from lakehouse.sources.movies_sample import imdb_gz, movielens_zip


def land(lake: Lake, prefix: str, filename: str, data: bytes) -> str:
    key = f"{prefix}/2026/11/20/{filename}"
    lake.write_bytes(key, data)
    state = LandingState(key, hashlib.sha256(data).hexdigest(), len(data), "2026-11-20")
    lake.write_bytes(state_key(prefix), json.dumps(dataclasses.asdict(state)).encode())
    return key


def asset_for(table: str) -> dg.AssetsDefinition:
    return next(a for a in imdb_silver_assets if a.key.path[-1] == table)


@pytest.mark.parametrize("broken", ["not gzip", "cut short"])
def test_an_unreadable_imdb_file_fails_its_table_alone_naming_it(lake: Lake, broken: str) -> None:
    good = imdb_gz("title.basics")
    data = b"<html>503 Service Unavailable</html>" if broken == "not gzip" \
        else good[: len(good) // 2]
    bad_key = land(lake, "raw/imdb/title_basics", "title.basics.tsv.gz", data)
    land(lake, "raw/imdb/title_ratings", "title.ratings.tsv.gz", imdb_gz("title.ratings"))
    result = dg.materialize([asset_for("imdb_titles"), asset_for("imdb_ratings")],
                            resources={"lake": LakeResource()}, raise_on_error=False)
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert [e.step_key for e in failures] == ["silver__imdb_titles"]
    message = failures[0].step_failure_data.error.message
    assert bad_key in message and "cannot be read" in message
    assert "raw/imdb/title_basics/.latest.json" in message
    assert scan(lake, lake.table_uri("silver", "imdb_ratings")).collect().height > 0
    assert not lake.is_dir("silver/imdb_titles/_delta_log") or \
        scan(lake, lake.table_uri("silver", "imdb_titles")).collect().height == 0


def test_a_truncated_movielens_zip_fails_with_a_message_naming_it(lake: Lake) -> None:
    whole = movielens_zip()
    key = land(lake, "raw/movielens/release/ml-latest-small", "ml-latest-small.zip",
               whole[: len(whole) * 2 // 3])
    result = dg.materialize([movielens_silver], raise_on_error=False, resources={
        "lake": LakeResource(), "movielens": MovieLensResource()})
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert key in failure.step_failure_data.error.message
    assert "zip cannot be read" in failure.step_failure_data.error.message
