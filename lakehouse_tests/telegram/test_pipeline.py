"""The Telegram asset graph end to end: sample chat in, gold Delta tables out."""

import json
from datetime import UTC, date, datetime

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from lakehouse.definitions import defs
from lakehouse.defs.gold.assets import gold_dbt_models, gold_selection
from lakehouse.defs.raw_files import files_run_key
from lakehouse.defs.telegram.assets import RAW_GETUPDATES
from lakehouse.defs.telegram.jobs import telegram_poll_job
from lakehouse.defs.telegram.sensors import telegram_raw_file_sensor
from lakehouse.lake.delta import scan
from lakehouse.lake.ledger import Ledger
from lakehouse.lake.location import Lake
from lakehouse.lake.resource import LakeResource
from lakehouse.sources.telegram_landing import WEBHOOK_PREFIX
from lakehouse.sources.telegram_sample import SAMPLE_END_DATE, SampleChat
from lakehouse_tests.telegram.daemon import as_the_daemon, silver_tick

FIRST_DAY, LAST_DAY = "2026-11-10", SAMPLE_END_DATE.isoformat()
TABLES = [("bronze", "telegram_updates"), ("quarantine", "telegram_quarantine"),
          ("silver", "telegram_messages"), ("gold", "telegram_messages_per_day"),
          ("gold", "telegram_messages_per_user_per_day"),
          ("gold", "telegram_avg_message_length_per_user_per_day"),
          ("gold", "telegram_messages_per_hour_weekday_week")]


@pytest.fixture(scope="module")
def definitions() -> dg.Definitions:
    return defs()


def run(definitions: dg.Definitions, job: str, instance: dg.DagsterInstance, **kwargs) -> None:
    result = definitions.resolve_job_def(job).execute_in_process(instance=instance, **kwargs)
    assert result.success


def build_gold(definitions: dg.Definitions, instance: dg.DagsterInstance) -> None:
    """What gold_automation_sensor starts after silver changed: the Telegram dbt models."""
    assert dg.materialize([gold_dbt_models], selection=gold_selection("telegram"),
                          instance=instance, resources=definitions.resources).success


def land(definitions: dg.Definitions, instance: dg.DagsterInstance) -> None:
    """A poll of the sample chat that only lands its answers (the raw asset on its own)."""
    run(definitions, "telegram_poll_job", instance, asset_selection=[RAW_GETUPDATES])


def run_pipeline(definitions: dg.Definitions, instance: dg.DagsterInstance) -> None:
    # A poll run lands the answers and loads them into bronze.
    run(definitions, "telegram_poll_job", instance)
    # The sensor adds the days bronze loaded as partitions and rebuilds them.
    assert as_the_daemon(definitions, instance, silver_tick(definitions, instance)) == [
        (FIRST_DAY, LAST_DAY)]
    build_gold(definitions, instance)


def read(lake: Lake, layer: str, table: str) -> pl.DataFrame:
    frame = scan(lake, lake.table_uri(layer, table)).collect()
    return frame.sort(frame.columns)


def test_rerunning_partitions_gives_identical_tables(lake: Lake, definitions) -> None:
    instance = dg.DagsterInstance.ephemeral()
    run_pipeline(definitions, instance)
    first = {t: read(lake, *t) for t in TABLES}
    assert first[("silver", "telegram_messages")].height > 300
    # Everything again: a full bronze reload and the same silver days and gold.
    run(definitions, "telegram_bronze_job", instance)
    run(definitions, "telegram_daily_etl_job", instance, partition_key="2026-11-12")
    run(definitions, "telegram_daily_etl_job", instance,
        tags={"dagster/asset_partition_range_start": FIRST_DAY,
              "dagster/asset_partition_range_end": LAST_DAY})
    build_gold(definitions, instance)
    for table in TABLES:
        assert_frame_equal(read(lake, *table), first[table])


def _independent_messages() -> pl.DataFrame:
    """The sample chat's messages computed straight from the Update dicts, without our code."""
    latest: dict[tuple[int, int], dict] = {}
    for update in SampleChat().updates():
        for kind in ("message", "edited_message", "channel_post", "edited_channel_post"):
            if kind in update:
                m = update[kind]
                key = (m["chat"]["id"], m["message_id"])
                if key not in latest or m.get("edit_date", 0) >= latest[key].get("edit_date", 0):
                    latest[key] = m
    rows = []
    for (chat_id, _), m in latest.items():
        sent = datetime.fromtimestamp(m["date"], UTC)
        rows.append({"chat_id": chat_id, "date": sent.date(), "user_id": m.get("from", {}).get("id"),
                     "hour": sent.hour, "iso_weekday": sent.isoweekday(),
                     "iso_week": sent.isocalendar().week, "iso_year": sent.isocalendar().year,
                     "text_length": len(m["text"]) if "text" in m else None})
    return pl.DataFrame(rows)


def test_gold_values_equal_an_independent_computation(lake: Lake, definitions) -> None:
    run_pipeline(definitions, dg.DagsterInstance.ephemeral())
    expected = _independent_messages()

    per_day = read(lake, "gold", "telegram_messages_per_day").select(
        "chat_id", "date", "message_count")
    want = expected.group_by("chat_id", "date").agg(pl.len().alias("message_count"))
    assert_frame_equal(per_day, want.sort(per_day.columns), check_dtypes=False)

    per_user = read(lake, "gold", "telegram_messages_per_user_per_day").select(
        "chat_id", "date", "user_id", "message_count")
    want = (expected.filter(pl.col("user_id").is_not_null())
            .group_by("chat_id", "date", "user_id").agg(pl.len().alias("message_count")))
    assert_frame_equal(per_user, want.sort(per_user.columns), check_dtypes=False)

    avg_len = read(lake, "gold", "telegram_avg_message_length_per_user_per_day").select(
        "chat_id", "date", "user_id", "avg_text_length")
    want = (expected.filter(pl.col("text_length").is_not_null() & pl.col("user_id").is_not_null())
            .group_by("chat_id", "date", "user_id")
            .agg(pl.col("text_length").mean().alias("avg_text_length")))
    assert_frame_equal(avg_len, want.sort(avg_len.columns), check_dtypes=False)

    grid = read(lake, "gold", "telegram_messages_per_hour_weekday_week").select(
        "chat_id", "iso_year", "iso_week", "iso_weekday", "hour", "message_count")
    want = (expected.group_by("chat_id", "iso_year", "iso_week", "iso_weekday", "hour")
            .agg(pl.len().alias("message_count")))
    assert_frame_equal(grid, want.sort(grid.columns), check_dtypes=False)
    assert grid["hour"].is_between(0, 23).all() and grid["iso_weekday"].is_between(1, 7).all()


def _tick(instance: dg.DagsterInstance, cursor: str | None = None) -> dg.SensorResult:
    return telegram_raw_file_sensor(dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"lake": LakeResource()}))


def _files(result: dg.SensorResult) -> list[list[str]]:
    return [r.run_config["ops"]["telegram_bronze"]["config"]["files"]
            for r in result.run_requests or []]


def test_raw_file_sensor_requests_each_new_file_once(lake: Lake, definitions) -> None:
    instance = dg.DagsterInstance.ephemeral()
    land(definitions, instance)
    first = _tick(instance)
    assert _files(first) == [lake.list_keys("raw/telegram")]
    assert first.run_requests[0].run_key == files_run_key(_files(first)[0])
    # Requested and not loaded yet: the next tick does not ask again.
    assert not _tick(instance, first.cursor).run_requests

    new_key = f"{WEBHOOK_PREFIX}/{datetime.now(UTC):%Y/%m/%d}/20991231T000000000000Z-1-0001.ndjson"
    lake.write_bytes(new_key, b'{"update_id":1}\n')
    later = _tick(instance, first.cursor)
    assert _files(later) == [[new_key]]


def _segment(lake: Lake, stamp: str, update_id: int) -> str:
    today = datetime.now(UTC)
    key = f"{WEBHOOK_PREFIX}/{today:%Y/%m/%d}/{today:%Y%m%d}T{stamp}-7-0001.ndjson"
    update = {"update_id": update_id, "message": {
        "message_id": update_id, "date": int(today.timestamp()),
        "chat": {"id": -100, "type": "group"}, "text": f"update {update_id}"}}
    lake.write_bytes(key, json.dumps(update).encode() + b"\n")
    return key


def test_a_late_out_of_order_file_is_loaded_exactly_once(lake: Lake, definitions) -> None:
    """A segment whose key sorts before the newest loaded key (stranded by a crash, sealed under
    its opening time by the next start) is loaded once, then never requested again."""
    instance = dg.DagsterInstance.ephemeral()
    run(definitions, "telegram_poll_job", instance)
    _segment(lake, "120000000000Z", 700)
    first = _tick(instance)
    run(definitions, "telegram_bronze_job", instance,
        run_config=first.run_requests[0].run_config)
    quiet = _tick(instance, first.cursor)
    assert not quiet.run_requests  # all loaded: no run without work

    late = _segment(lake, "000000000000Z", 777)
    found = _tick(instance, quiet.cursor or first.cursor)
    assert _files(found) == [[late]]
    run(definitions, "telegram_bronze_job", instance,
        run_config=found.run_requests[0].run_config)
    assert not _tick(instance, found.cursor).run_requests
    assert not _tick(instance).run_requests  # a lost cursor changes nothing
    bronze = read(lake, "bronze", "telegram_updates")
    assert bronze.filter(pl.col("update_id").is_in([700, 777])).height == 2


def test_silver_sensor_rebuilds_the_days_bronze_touched(lake: Lake, definitions) -> None:
    instance = dg.DagsterInstance.ephemeral()
    run(definitions, "telegram_poll_job", instance)
    result = silver_tick(definitions, instance)
    sample_week = [f"2026-11-{day}" for day in range(10, 17)]
    assert [r.partition_keys for r in result.dynamic_partitions_requests] == [sample_week]
    requests = result.run_requests
    assert len(requests) == 1
    assert requests[0].tags["dagster/asset_partition_range_start"] == FIRST_DAY
    assert requests[0].tags["dagster/asset_partition_range_end"] == LAST_DAY
    assert requests[0].run_key.startswith("telegram-silver:")


def test_a_poll_run_loads_what_it_landed_and_leaves_webhook_files_to_the_sensor(
        lake: Lake, definitions) -> None:
    instance = dg.DagsterInstance.ephemeral()
    segment = _segment(lake, "120000000000Z", 700)  # landed by the webhook before the poll
    run(definitions, "telegram_poll_job", instance)
    answers = lake.list_keys("raw/telegram/getupdates")
    bronze = read(lake, "bronze", "telegram_updates")
    # The poll's answers are in bronze and its ledger, the webhook segment is not: it is the
    # raw-file sensor's, which asks for it alone, and never for the answers.
    assert answers and sorted(bronze["_source_file"].unique()) == answers
    assert Ledger(lake, "bronze", "telegram_updates").unloaded([*answers, segment]) == [segment]
    first = _tick(instance)
    assert _files(first) == [[segment]]
    run(definitions, "telegram_bronze_job", instance, run_config=first.run_requests[0].run_config)
    assert not _tick(instance, first.cursor).run_requests
    bronze = read(lake, "bronze", "telegram_updates")
    assert bronze.filter(pl.col("update_id") == 700).height == 1
    # Each answer's updates once: the sensor never loaded them a second time.
    assert bronze.filter(pl.col("_source_file").is_in(answers)).height == \
        sum(len(json.loads(lake.read_bytes(key))["result"]) for key in answers)


def test_answers_are_left_to_a_poll_run_in_flight_and_taken_after_it_failed(
        lake: Lake, definitions) -> None:
    instance = dg.DagsterInstance.ephemeral()
    land(definitions, instance)  # answers landed, not loaded: as a poll run that died midway
    answers = lake.list_keys("raw/telegram/getupdates")
    segment = _segment(lake, "120000000000Z", 700)
    instance.add_run(dg.DagsterRun(job_name=telegram_poll_job.name, run_id="polling",
                                   status=dg.DagsterRunStatus.STARTED))
    while_polling = _tick(instance)
    assert _files(while_polling) == [[segment]]
    instance.report_run_failed(instance.get_run_by_id("polling"))
    after = _tick(instance, while_polling.cursor)
    assert _files(after) == [answers]


def test_the_same_pipeline_runs_on_s3(s3_lake: Lake, definitions) -> None:
    run_pipeline(definitions, dg.DagsterInstance.ephemeral())
    assert s3_lake.list_keys("raw/telegram/getupdates")
    per_day = read(s3_lake, "gold", "telegram_messages_per_day")
    assert per_day["date"].min() == date(2026, 11, 10)
    assert per_day["message_count"].sum() == _independent_messages().height


def test_silver_sensor_asks_nothing_for_days_already_rebuilt(lake: Lake, definitions) -> None:
    # `make demo` then `make dev`: a sensor with no cursor reads the demo's bronze load, and
    # silver already holds every day it touched.
    instance = dg.DagsterInstance.ephemeral()
    run_pipeline(definitions, instance)
    quiet = silver_tick(definitions, instance)
    assert not quiet.run_requests and not quiet.dynamic_partitions_requests
    # A later bronze load of the same days asks for them again.
    run(definitions, "telegram_bronze_job", instance,
        run_config={"ops": {"telegram_bronze": {"config": {"reload_all": True}}}})
    again = silver_tick(definitions, instance, quiet.cursor).run_requests
    assert again and again[0].tags["dagster/asset_partition_range_end"] == LAST_DAY


def test_gold_takes_its_lake_from_the_resource_and_leaves_the_environment_alone(
        lake: Lake, definitions, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """dbt gets the lake root and the DuckDB file as ``--vars``: the asset sets no variable of
    the process (an audit hook sees every ``os.putenv``/``os.unsetenv``), and a lake given to
    the resource wins over ``LAKEHOUSE_ROOT``."""
    import sys

    instance = dg.DagsterInstance.ephemeral()
    run(definitions, "telegram_poll_job", instance)
    run(definitions, "telegram_bronze_job", instance)
    as_the_daemon(definitions, instance, silver_tick(definitions, instance))
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(tmp_path / "elsewhere"))  # an empty lake
    changes: list[tuple[str, tuple]] = []
    watching = [True]

    def audit(event: str, args: tuple) -> None:
        if watching[0] and event in ("os.putenv", "os.unsetenv"):
            changes.append((event, args[:1]))

    sys.addaudithook(audit)  # hooks cannot be removed: `watching` turns this one off
    try:
        resources = {**definitions.resources, "lake": LakeResource(root=lake.root)}
        assert dg.materialize([gold_dbt_models], selection=gold_selection("telegram"),
                              instance=instance, resources=resources).success
    finally:
        watching[0] = False
    assert changes == []
    per_day = read(lake, "gold", "telegram_messages_per_day")
    assert per_day["message_count"].sum() == _independent_messages().height
