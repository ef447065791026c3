"""The code location as the UI sees it: assets, lineage, jobs, sensors, schedules."""

import dagster as dg
import pytest

from lakehouse.definitions import defs


@pytest.fixture(scope="module")
def repo():
    return defs().get_repository_def()


def test_telegram_assets_and_their_lineage(repo) -> None:
    graph = repo.asset_graph
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"raw/telegram/getupdates", "raw/telegram/webhook", "bronze/telegram_updates",
            "quarantine/telegram_quarantine", "silver/telegram_messages",
            "gold/telegram_messages_per_day", "gold/telegram_messages_per_user_per_day",
            "gold/telegram_avg_message_length_per_user_per_day",
            "gold/telegram_messages_per_hour_weekday_week"} <= keys
    silver = dg.AssetKey(["silver", "telegram_messages"])
    for model in ("telegram_messages_per_day", "telegram_messages_per_hour_weekday_week"):
        assert silver in graph.get(dg.AssetKey(["gold", model])).parent_keys
    assert dg.AssetKey(["bronze", "telegram_updates"]) in graph.get(silver).parent_keys


def test_every_asset_has_a_group_a_description_and_kinds(repo) -> None:
    graph = repo.asset_graph
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.group_name and node.group_name != "default", key
        assert node.description, key
        assert node.kinds, key
    gold = graph.get(dg.AssetKey(["gold", "telegram_messages_per_day"]))
    assert gold.group_name == "gold" and {"dbt", "duckdb", "delta"} <= set(gold.kinds)


def test_dbt_tests_are_asset_checks(repo) -> None:
    checks = {c.name for c in repo.asset_graph.asset_check_keys
              if c.asset_key == dg.AssetKey(["gold", "telegram_messages_per_day"])}
    assert any(name.startswith("unique_combination_of_columns") for name in checks)
    assert "not_null_telegram_messages_per_day_date" in checks


def test_telegram_automation_is_registered(repo) -> None:
    assert {"telegram_poll_job", "telegram_bronze_job", "telegram_daily_etl_job"} <= \
        {job.name for job in repo.get_all_jobs()}
    assert {"telegram_poll_sensor", "telegram_raw_file_sensor", "telegram_silver_sensor"} <= \
        {sensor.name for sensor in repo.sensor_defs}
    schedule = repo.get_schedule_def("telegram_daily_etl_schedule")
    assert schedule.cron_schedule == "30 0 * * *"


def test_runs_execute_in_process(repo) -> None:
    # A process per step reloads the code location per step: most of a small run on 2 cores.
    assert {job.name: job.executor_def.name for job in repo.get_all_jobs()} == \
        {job.name: "in_process" for job in repo.get_all_jobs()}


def test_table_upkeep_is_scheduled_nightly(repo) -> None:
    schedule = repo.get_schedule_def("lake_maintenance_schedule")
    assert schedule.job_name == "lake_maintenance_job"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
