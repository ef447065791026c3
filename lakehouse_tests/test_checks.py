"""The checks the UI shows on bronze and movies silver, and the raw files reported as landed,
on real Delta tables and fixtures in the Bot API's format."""

import json
from datetime import UTC, datetime

import dagster as dg
import polars as pl
import pytest
from deltalake import DeltaTable

from lakehouse.defs.movies.checks import SILVER_TABLES, check_silver_table
from lakehouse.defs.raw_files import file_accounting
from lakehouse.defs.telegram.assets import BRONZE_UPDATES, QUARANTINE, RAW_WEBHOOK, telegram_bronze
from lakehouse.defs.telegram.sensors import telegram_raw_file_sensor
from lakehouse.defs.twitter.assets import twitter_bronze, twitter_silver
from lakehouse.defs.ui import TABLE_SCHEMAS
from lakehouse.lake.delta import open_table, overwrite_table, scan
from lakehouse.lake.location import Lake
from lakehouse.lake.resource import LakeResource
from lakehouse.sources.telegram import TelegramResource
from lakehouse.sources.twitter import search_key, stream_key
from lakehouse_tests.conftest import FIXTURES

ANSWER_KEY = "raw/telegram/getupdates/2026/11/17/20261117T080000000000Z-731000001-731000999.json"
SEGMENT_KEY = "raw/telegram/webhook/2026/11/17/20261117T090000000000Z-1-0001.ndjson"
LANDED = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)


@pytest.fixture
def landed(lake: Lake) -> Lake:
    lake.write_bytes(ANSWER_KEY, (FIXTURES / "telegram/getupdates_answer.json").read_bytes())
    lake.write_bytes(SEGMENT_KEY, (FIXTURES / "telegram/webhook_segment.ndjson").read_bytes())
    return lake


def _load_bronze(allowed_chats: str | None = None) -> dg.AssetCheckEvaluation:
    result = dg.materialize([telegram_bronze], resources={
        "lake": LakeResource(), "telegram": TelegramResource(chat_ids=allowed_chats)})
    assert result.success
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def test_bronze_accounts_for_every_record_of_the_loaded_files(landed: Lake) -> None:
    evaluation = _load_bronze()
    facts = {k: v.value for k, v in evaluation.metadata.items()}
    assert evaluation.check_name == "file_accounting" and evaluation.passed
    assert facts["files"] == 2 and facts["quarantined"] >= 1  # "this is not json", and more
    assert facts["bronze_rows"] + facts["quarantined"] == facts["records"]
    # The columns the UI shows are the columns written.
    for key in (BRONZE_UPDATES, QUARANTINE):
        written = scan(landed, landed.table_uri(*key.path)).collect_schema().names()
        assert written == list(TABLE_SCHEMAS[key]), key


def test_records_dropped_by_the_chat_allow_list_are_accounted_for(landed: Lake) -> None:
    evaluation = _load_bronze(allowed_chats="-1001987654321")
    facts = {k: v.value for k, v in evaluation.metadata.items()}
    assert evaluation.passed and facts["set_aside"] >= 1
    assert facts["bronze_rows"] + facts["quarantined"] + facts["set_aside"] == facts["records"]


def test_a_row_lost_from_bronze_fails_the_accounting(landed: Lake) -> None:
    facts = {k: v.value for k, v in _load_bronze().metadata.items()}
    DeltaTable(landed.table_uri(*BRONZE_UPDATES.path)).delete("update_id = 731100002")
    recheck = file_accounting(landed, BRONZE_UPDATES, QUARANTINE, [ANSWER_KEY, SEGMENT_KEY],
                              facts["records"])
    assert not recheck.passed
    assert recheck.metadata["bronze_rows"].value == facts["bronze_rows"] - 1


def test_files_landed_by_the_webhook_are_reported_on_their_raw_asset(landed: Lake) -> None:
    result = telegram_raw_file_sensor(dg.build_sensor_context(
        instance=dg.DagsterInstance.ephemeral(), resources={"lake": LakeResource()}))
    (event,) = result.asset_events  # getUpdates files are materialized by their own asset
    assert event.asset_key == RAW_WEBHOOK
    assert event.metadata["files"].value == 1
    assert event.metadata["first_file"].value == SEGMENT_KEY


LINKS = SILVER_TABLES["movielens_links"]


def _write_links(lake: Lake, frame: pl.DataFrame) -> None:
    overwrite_table(lake, lake.table_uri("silver", LINKS.name), frame)


def test_movies_silver_check_passes_on_unique_keys_and_all_columns(lake: Lake) -> None:
    _write_links(lake, pl.DataFrame({"movie_id": [1, 2], "imdb_id": ["tt0114709", "tt0113497"],
                                     "tmdb_id": [862, None]}, schema=LINKS.schema))
    result = check_silver_table(lake, LINKS)
    assert result.passed and result.metadata["rows"].value == 2


def test_movies_silver_check_finds_duplicate_keys(lake: Lake) -> None:
    _write_links(lake, pl.DataFrame({"movie_id": [1, 1, 2], "imdb_id": ["tt1", "tt2", "tt3"],
                                     "tmdb_id": [1, 2, 3]}, schema=LINKS.schema))
    result = check_silver_table(lake, LINKS)
    assert not result.passed and result.metadata["duplicate_key_rows"].value == 1


def test_movies_silver_check_names_missing_columns(lake: Lake) -> None:
    _write_links(lake, pl.DataFrame({"movie_id": [1], "imdb_id": ["tt1"]}))
    result = check_silver_table(lake, LINKS)
    assert not result.passed and result.metadata["missing_columns"].value == ["tmdb_id"]


def test_twitter_tables_have_the_columns_the_ui_shows(lake: Lake) -> None:
    for name in ("search_page_1.json", "stream.ndjson"):
        data = (FIXTURES / "twitter" / name).read_bytes()
        if name.endswith(".ndjson"):
            key = stream_key("20261117T090100000000Z-1-0001.ndjson", LANDED)
        else:
            meta = json.loads(data)["meta"]
            key = search_key(LANDED, meta["newest_id"], meta["oldest_id"])
        lake.write_bytes(key, data)
    result = dg.materialize([twitter_bronze, twitter_silver], resources={"lake": LakeResource()})
    assert result.success
    accounting = [e for e in result.get_asset_check_evaluations()
                  if e.check_name == "file_accounting"]
    assert [e.passed for e in accounting] == [True]
    written = [k for k in TABLE_SCHEMAS if k.path[0] != "gold"
               and open_table(lake, lake.table_uri(*k.path)) is not None
               and k in {*twitter_bronze.keys, *twitter_silver.keys}]
    assert len(written) >= 7
    for key in written:
        columns = scan(lake, lake.table_uri(*key.path)).collect_schema().names()
        assert columns == list(TABLE_SCHEMAS[key]), key
