"""No run without work: once the demo has loaded the sample data, no raw-file sensor asks for a
run (the ledgers hold every landed file); a newly landed file is asked for once."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from lakehouse.defs.movies.sensors import movies_csv_drop_sensor
from lakehouse.defs.telegram.sensors import telegram_raw_file_sensor
from lakehouse.defs.twitter.sensors import twitter_raw_file_sensor
from lakehouse.demo import domain_demos
from lakehouse.lake.location import Lake
from lakehouse.lake.resource import LakeResource
from lakehouse.sources.telegram_landing import WEBHOOK_PREFIX
from lakehouse.sources.twitter import STREAM_PREFIX

SENSORS = (telegram_raw_file_sensor, twitter_raw_file_sensor, movies_csv_drop_sensor)


def test_after_the_demo_the_raw_file_sensors_ask_for_nothing(
        lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_DROP_DIR", str(tmp_path / "drop"))
    for name in ("TWITTER_BEARER_TOKEN", "TMDB_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    from lakehouse.definitions import defs

    resources = defs().resources
    instance = dg.DagsterInstance.ephemeral()
    for demo in domain_demos():
        demo.materialize_sample(instance)
    for sensor in SENSORS:
        result = sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert not result.run_requests, f"{sensor.name} asked for {result.run_requests}"

    now = datetime.now(UTC)
    key = f"{STREAM_PREFIX}/{now:%Y/%m/%d}/{now:%Y%m%dT%H%M%S%fZ}-9-0001.ndjson"
    lake.write_bytes(key, b'{"data": {"id": "1", "text": "late", "created_at": '
                          b'"2026-11-20T10:00:00.000Z"}}\n')
    first = twitter_raw_file_sensor(dg.build_sensor_context(instance=instance,
                                                            resources=resources))
    assert [r.run_key for r in first.run_requests] == [key]
    again = twitter_raw_file_sensor(dg.build_sensor_context(
        instance=instance, resources=resources, cursor=first.cursor))
    assert not again.run_requests


def _segment(lake: Lake, name: str) -> str:
    now = datetime.now(UTC)
    key = f"{WEBHOOK_PREFIX}/{now:%Y/%m/%d}/{now:%Y%m%d}T{name}-1-0001.ndjson"
    lake.write_bytes(key, b'{"update_id": 1}\n')
    return key


def _files(result: dg.SensorResult) -> list[list[str]]:
    return [r.run_config["ops"]["telegram_bronze"]["config"]["files"]
            for r in result.run_requests or []]


def test_files_of_a_running_load_wait_and_those_of_a_failed_one_are_asked_again(
        lake: Lake) -> None:
    instance = dg.DagsterInstance.ephemeral()
    resources = {"lake": LakeResource()}

    def tick(cursor: str | None) -> dg.SensorResult:
        return telegram_raw_file_sensor(dg.build_sensor_context(
            instance=instance, resources=resources, cursor=cursor))

    a, b = _segment(lake, "010000000000Z"), _segment(lake, "020000000000Z")
    first = tick(None)
    assert _files(first) == [[a, b]]
    run = instance.add_run(dg.DagsterRun(
        job_name="telegram_bronze_job", status=dg.DagsterRunStatus.STARTED,
        tags={"dagster/sensor_name": "telegram_raw_file_sensor",
              "dagster/run_key": first.run_requests[0].run_key}))
    c = _segment(lake, "000000000000Z")  # late, sorting first
    second = tick(first.cursor)
    assert _files(second) == [[c]]  # a and b are being loaded by the running run
    instance.report_run_failed(run)
    third = tick(second.cursor)
    assert _files(third) == [[a, b]]  # the run died without loading them: asked again,
    assert third.run_requests[0].run_key == f"{first.run_requests[0].run_key}#retry1"  # anew
