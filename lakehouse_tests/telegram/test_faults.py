"""Faults the Telegram pipeline must take without failing or losing a record: untypeable
records, records around the partitions' range (edits of old messages: test_partitions)."""

import json
from datetime import UTC, date, datetime

import dagster as dg
import polars as pl
import pytest

from lakehouse.definitions import defs
from lakehouse.lake.delta import scan
from lakehouse.lake.location import Lake
from lakehouse.sources.telegram_landing import WEBHOOK_PREFIX, read_raw_records
from lakehouse.transforms.telegram import bronze_updates, quarantine_records
from lakehouse_tests.telegram.daemon import as_the_daemon, silver_tick

NOW = datetime.now(UTC)
CHAT = {"id": -1001, "type": "supergroup", "title": "films"}


def message(update_id: int, kind: str = "message", **fields) -> dict:
    body = {"message_id": update_id, "date": int(NOW.timestamp()), "chat": CHAT,
            "from": {"id": 7, "is_bot": False, "first_name": "Ana"}, "text": "hello"}
    body.update(fields)
    return {"update_id": update_id, kind: body}


def land_segment(lake: Lake, lines: list[str]) -> str:
    key = f"{WEBHOOK_PREFIX}/{NOW:%Y/%m/%d}/{NOW:%Y%m%dT%H%M%S%fZ}-1-0001.ndjson"
    lake.write_bytes(key, ("\n".join(lines) + "\n").encode())
    return key


@pytest.fixture(scope="module")
def definitions() -> dg.Definitions:
    return defs()


def table(lake: Lake, layer: str, name: str) -> pl.DataFrame:
    return scan(lake, lake.table_uri(layer, name)).collect()


BAD = {
    "message date -10**12": json.dumps(message(2, date=-10**12)),
    "update_id true": json.dumps({"update_id": True, "message": message(3)["message"]}),
    "update_id 5.5": json.dumps({"update_id": 5.5, "message": message(4)["message"]}),
    "update_id 10**30": json.dumps({"update_id": 10**30, "message": message(5)["message"]}),
    "message not an object": json.dumps({"update_id": 6, "message": 5}),
    "message without chat": json.dumps({"update_id": 7, "message": {"message_id": 7,
                                                                    "date": 1}}),
    "date a string": json.dumps(message(8, date="yesterday")),
    "edit_date 10**15": json.dumps(message(9, kind="edited_message", edit_date=10**15)),
    "not JSON": '{"update_id": 10, "message": ',
    "a JSON array": "[1, 2, 3]",
}


def test_untypeable_records_are_quarantined_and_the_run_succeeds(lake: Lake,
                                                                definitions) -> None:
    good = [json.dumps(message(1)), json.dumps(message(11, kind="channel_post"))]
    key = land_segment(lake, [good[0], *BAD.values(), good[1]])
    instance = dg.DagsterInstance.ephemeral()
    result = definitions.resolve_job_def("telegram_bronze_job").execute_in_process(
        instance=instance, run_config={"ops": {"telegram_bronze": {"config": {"files": [key]}}}})
    assert result.success

    assert sorted(table(lake, "bronze", "telegram_updates")["update_id"]) == [1, 11]
    quarantine = table(lake, "quarantine", "telegram_quarantine").sort("_record_index")
    assert quarantine["record"].to_list() == list(BAD.values())
    reasons = dict(zip(BAD, quarantine["reason"], strict=True))
    assert reasons["message date -10**12"].startswith("message date -1000000000000 is before")
    assert reasons["update_id true"] == "JSON without a numeric update_id"
    assert reasons["update_id 5.5"] == "update_id is not a 64-bit integer"
    assert reasons["update_id 10**30"] == "update_id is not a 64-bit integer"
    assert reasons["message not an object"] == "message without an integer message_id"
    assert reasons["message without chat"] == "message without an integer chat.id"
    assert reasons["date a string"] == "message without an integer date"
    assert reasons["edit_date 10**15"].startswith("edit_date 1000000000000000 is outside")
    assert reasons["not JSON"] == "not valid JSON"
    assert reasons["a JSON array"] == "JSON without a numeric update_id"
    bronze_event = result.asset_materializations_for_node("telegram_bronze")[0]
    assert bronze_event.metadata["quarantined"].value == len(BAD)
    assert bronze_event.metadata["bronze_rows"].value == 2

    # Silver, asked for by the sensor, runs on the good records.
    assert as_the_daemon(definitions, instance, silver_tick(definitions, instance)) == [
        (NOW.date().isoformat(), NOW.date().isoformat())]
    assert sorted(table(lake, "silver", "telegram_messages")["message_id"]) == [1, 11]


def test_a_message_before_a_configured_partitions_start_is_quarantined_with_why(
        lake: Lake) -> None:
    sent = datetime(2023, 12, 31, 23, 0, tzinfo=UTC)
    key = land_segment(lake, [json.dumps(message(30)), json.dumps(
        message(31, kind="edited_message", date=int(sent.timestamp()),
                edit_date=int(NOW.timestamp())))])
    records, _ = read_raw_records(lake, [key])
    days = (date(2024, 1, 1), NOW.date())
    bronze = bronze_updates(records.lazy(), days=days).collect()
    quarantine = quarantine_records(records.lazy(), days).collect()
    assert bronze["update_id"].to_list() == [30]
    assert quarantine["reason"].to_list() == [
        f"message date {int(sent.timestamp())} is before the partitions' start 2024-01-01 "
        "(TELEGRAM_PARTITIONS_START)"]
