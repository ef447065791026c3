"""Silver's partitions are the days that have messages: no empty day waits in the UI to be
backfilled, and an edit of a message sent long ago adds (or refreshes) its own day."""

import json
from datetime import UTC, date, datetime, time, timedelta

import dagster as dg
import polars as pl
import pytest

from lakehouse.definitions import defs
from lakehouse.defs.telegram import demo
from lakehouse.defs.telegram.assets import SILVER_MESSAGES, message_days
from lakehouse.defs.telegram.schedules import telegram_daily_etl_schedule
from lakehouse.lake.delta import scan
from lakehouse.lake.location import Lake
from lakehouse.sources.telegram_landing import WEBHOOK_PREFIX
from lakehouse.sources.telegram_sample import SAMPLE_DAYS, SAMPLE_END_DATE
from lakehouse_tests.telegram.daemon import as_the_daemon, silver_tick

NOW = datetime.now(UTC)
CHAT = {"id": -1001, "type": "supergroup", "title": "films"}
# Three days with messages, weeks apart: the days between them have none.
DAYS = [NOW.date() - timedelta(days=n) for n in (40, 9, 0)]
LONG_AGO = date(2019, 3, 4)


@pytest.fixture(scope="module")
def definitions() -> dg.Definitions:
    return defs()


def _at(day: date) -> int:
    return int(datetime.combine(day, time(0, 30), UTC).timestamp())


def _update(update_id: int, message_id: int, day: date, text: str, edited: bool = False) -> str:
    body = {"message_id": message_id, "date": _at(day), "chat": CHAT, "text": text,
            "from": {"id": 7, "is_bot": False, "first_name": "Ana"}}
    if edited:
        body["edit_date"] = int(NOW.timestamp())
    return json.dumps({"update_id": update_id, "edited_message" if edited else "message": body})


def _land(lake: Lake, lines: list[str], seq: int) -> str:
    key = f"{WEBHOOK_PREFIX}/{NOW:%Y/%m/%d}/{NOW:%Y%m%dT%H%M%S%fZ}-1-{seq:04d}.ndjson"
    lake.write_bytes(key, ("\n".join(lines) + "\n").encode())
    return key


def _load_bronze(definitions: dg.Definitions, instance: dg.DagsterInstance, key: str) -> None:
    assert definitions.resolve_job_def("telegram_bronze_job").execute_in_process(
        instance=instance,
        run_config={"ops": {"telegram_bronze": {"config": {"files": [key]}}}}).success


def _partitions(instance: dg.DagsterInstance) -> list[str]:
    return list(message_days.get_partition_keys(dynamic_partitions_store=instance))


def _missing(instance: dg.DagsterInstance) -> set[str]:
    """Partitions without a status (never materialized, not failed, not in progress): what the
    UI counts as missing and a "backfill missing" would run."""
    keys = _partitions(instance)
    status = instance.get_status_by_partition(SILVER_MESSAGES, keys, message_days) or {}
    return {key for key in keys if status.get(key) is None}


def test_partitions_are_the_days_with_messages_and_an_old_edit_adds_its_day(
        lake: Lake, definitions) -> None:
    instance = dg.DagsterInstance.ephemeral()
    _load_bronze(definitions, instance, _land(lake, [
        _update(1, 101, DAYS[0], "first"), _update(2, 102, DAYS[1], "second"),
        _update(3, 103, DAYS[2], "third")], seq=1))
    first = silver_tick(definitions, instance, None)
    assert as_the_daemon(definitions, instance, first) == [
        (DAYS[0].isoformat(), DAYS[2].isoformat())]
    assert _partitions(instance) == [d.isoformat() for d in DAYS]
    assert _missing(instance) == set()

    # Edits of a message of the first day and of one sent in 2019, whose day holds nothing yet.
    _load_bronze(definitions, instance, _land(lake, [
        _update(4, 101, DAYS[0], "first, fixed", edited=True),
        _update(5, 55, LONG_AGO, "fixed years later", edited=True)], seq=2))
    second = silver_tick(definitions, instance, first.cursor)
    # Exactly the two touched days are rebuilt; only the new one becomes a partition.
    assert as_the_daemon(definitions, instance, second) == [
        (DAYS[0].isoformat(), DAYS[0].isoformat()),
        (LONG_AGO.isoformat(), LONG_AGO.isoformat())]
    assert sorted(_partitions(instance)) == sorted([*(d.isoformat() for d in DAYS),
                                                    LONG_AGO.isoformat()])
    assert _missing(instance) == set()
    silver = scan(lake, lake.table_uri(*SILVER_MESSAGES.path)).collect()
    texts = dict(zip(silver["message_id"], silver["text"], strict=True))
    assert texts == {101: "first, fixed", 102: "second", 103: "third", 55: "fixed years later"}
    old = silver.filter(pl.col("message_id") == 55).row(0, named=True)
    assert old["date"] == LONG_AGO and old["is_edited"]

    third = silver_tick(definitions, instance, second.cursor)
    assert not third.run_requests and not third.dynamic_partitions_requests


def test_every_bronze_load_between_two_ticks_is_seen(lake: Lake, definitions) -> None:
    instance = dg.DagsterInstance.ephemeral()
    _load_bronze(definitions, instance, _land(lake, [_update(1, 1, DAYS[0], "a")], seq=1))
    _load_bronze(definitions, instance, _land(lake, [_update(2, 2, LONG_AGO, "b")], seq=2))
    result = silver_tick(definitions, instance, None)
    # Both days are new, added in order and adjacent: one run rebuilds the two of them.
    assert as_the_daemon(definitions, instance, result) == [
        (LONG_AGO.isoformat(), DAYS[0].isoformat())]
    assert _partitions(instance) == [LONG_AGO.isoformat(), DAYS[0].isoformat()]
    assert _missing(instance) == set()


def test_after_the_demo_every_partition_is_built_and_nothing_is_asked(
        lake: Lake, definitions) -> None:
    instance = dg.DagsterInstance.ephemeral()
    demo.materialize_sample(instance)
    sample = [(SAMPLE_END_DATE - timedelta(days=n)).isoformat() for n in range(SAMPLE_DAYS)]
    assert sorted(_partitions(instance)) == sorted(sample)
    assert _missing(instance) == set()
    result = silver_tick(definitions, instance, None)  # `make dev` after `make demo`
    assert not result.run_requests and not result.dynamic_partitions_requests


def test_the_daily_schedule_skips_a_day_without_messages_or_already_rebuilt(
        lake: Lake, definitions) -> None:
    yesterday = NOW.date() - timedelta(days=1)
    with dg.instance_for_test() as instance:  # a schedule context needs a persistent instance

        def schedule_tick() -> dg.RunRequest | dg.SkipReason:
            return telegram_daily_etl_schedule(dg.build_schedule_context(
                instance=instance,
                scheduled_execution_time=datetime.combine(NOW.date(), time(0, 30), UTC)))

        assert isinstance(schedule_tick(), dg.SkipReason)  # no message yesterday: no partition
        _load_bronze(definitions, instance, _land(lake, [_update(1, 1, yesterday, "late")], 1))
        instance.add_dynamic_partitions(message_days.name, [yesterday.isoformat()])
        request = schedule_tick()
        assert isinstance(request, dg.RunRequest)
        assert request.partition_key == yesterday.isoformat()
        assert request.run_key == f"telegram-daily-{yesterday.isoformat()}"
        assert definitions.resolve_job_def("telegram_daily_etl_job").execute_in_process(
            instance=instance, partition_key=request.partition_key).success
        assert isinstance(schedule_tick(), dg.SkipReason)  # rebuilt after the last bronze load


def test_a_new_instance_over_a_loaded_lake_gets_a_partition_for_every_bronze_day(
        lake: Lake, definitions) -> None:
    """An instance upgraded from calendar partitions, or a new one (moved to PostgreSQL) over
    a lake loaded before: its first bronze load brings every day bronze holds."""
    before = dg.DagsterInstance.ephemeral()
    _load_bronze(definitions, before, _land(lake, [
        _update(1, 1, DAYS[0], "a"), _update(2, 2, DAYS[1], "b")], seq=1))
    instance = dg.DagsterInstance.ephemeral()
    _load_bronze(definitions, instance, _land(lake, [_update(3, 3, DAYS[2], "c")], seq=2))
    result = silver_tick(definitions, instance, None)
    # Every bronze day becomes a partition; only the day this load touched is rebuilt.
    assert as_the_daemon(definitions, instance, result) == [
        (DAYS[2].isoformat(), DAYS[2].isoformat())]
    assert _partitions(instance) == [d.isoformat() for d in DAYS]
    assert _missing(instance) == {DAYS[0].isoformat(), DAYS[1].isoformat()}


def test_a_rebuild_that_started_before_a_load_is_not_taken_for_one_after_it(
        lake: Lake, definitions) -> None:
    instance = dg.DagsterInstance.ephemeral()
    _load_bronze(definitions, instance, _land(lake, [_update(1, 1, DAYS[2], "early")], seq=1))
    first = silver_tick(definitions, instance, None)
    as_the_daemon(definitions, instance, first)
    late = _land(lake, [_update(2, 2, DAYS[2], "late")], seq=2)

    @dg.asset(key=SILVER_MESSAGES, partitions_def=message_days)
    def rebuild_under_way() -> None:
        """A rebuild of the day that read bronze just before a load, and finished after it."""
        _load_bronze(definitions, instance, late)

    assert dg.materialize([rebuild_under_way], instance=instance,
                          partition_key=DAYS[2].isoformat()).success
    second = silver_tick(definitions, instance, first.cursor)
    assert as_the_daemon(definitions, instance, second) == [
        (DAYS[2].isoformat(), DAYS[2].isoformat())]
    silver = scan(lake, lake.table_uri(*SILVER_MESSAGES.path)).collect()
    assert sorted(silver["text"]) == ["early", "late"]
