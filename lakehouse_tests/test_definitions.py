"""The code location as the UI sees it: assets, lineage, jobs, sensors, schedules."""

from pathlib import Path

import dagster as dg
import pytest

from lakehouse.definitions import defs
from lakehouse.defs.ui import TABLE_SCHEMAS
from lakehouse.settings import DBT_PROJECT_DIR
from lakehouse.sources.csv_drop import CSV_DROP_ENV, CsvDropResource
from lakehouse.sources.imdb import IMDB_ENV, ImdbResource
from lakehouse.sources.movielens import MOVIELENS_ENV, MovieLensResource
from lakehouse.sources.telegram import TELEGRAM_ENV, TelegramResource
from lakehouse.sources.tmdb import TMDB_ENV, TmdbResource
from lakehouse.sources.twitter import TWITTER_ENV, TwitterResource
from lakehouse.transforms import telegram


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


DOMAINS = {"telegram": "team:telegram", "twitter": "team:twitter", "movies": "team:movies"}
# Each CSV drop becomes its own table with its file's columns: no fixed schema to show.
WITHOUT_FIXED_COLUMNS = {dg.AssetKey(["silver", "csv_drops"])}


def _gold_domain(key: dg.AssetKey) -> str:
    """The folder of the model's SQL file: dbt_project/models/<domain>/<model>.sql."""
    sql = next(DBT_PROJECT_DIR.glob(f"models/*/{key.path[-1]}.sql"))
    return sql.parent.name


def test_every_asset_has_owner_domain_group_description_kinds_and_code(repo) -> None:
    graph = repo.asset_graph
    keys = graph.get_all_asset_keys()
    assert len(keys) >= 64
    for key in keys:
        node = graph.get(key)
        domain = _gold_domain(key) if key.path[0] == "gold" else node.group_name
        assert node.group_name == domain and domain in DOMAINS, key
        assert node.owners == [DOMAINS[domain]], key
        assert node.description and len(node.description) > 30, key
        assert node.kinds, key
        references = node.metadata["dagster/code_references"].code_references
        assert references, key
        for reference in references:
            assert Path(reference.file_path).is_file(), (key, reference)
            assert reference.file_path.endswith(".sql") or reference.line_number, (key, reference)
    gold = graph.get(dg.AssetKey(["gold", "telegram_messages_per_day"]))
    assert gold.group_name == "telegram" and {"dbt", "duckdb", "delta"} <= set(gold.kinds)
    sql_files = {Path(r.file_path).name for r in
                 gold.metadata["dagster/code_references"].code_references}
    assert "telegram_messages_per_day.sql" in sql_files


def test_code_references_point_at_the_defining_lines(repo) -> None:
    node = repo.asset_graph.get(dg.AssetKey(["bronze", "telegram_updates"]))
    (reference,) = node.metadata["dagster/code_references"].code_references
    lines = Path(reference.file_path).read_text().splitlines()[reference.line_number - 1:]
    assert lines[0].startswith("@dg.multi_asset(")  # the decorator, then its function
    assert next(line for line in lines if line.startswith("def ")).startswith("def telegram_bronze(")


def test_no_two_assets_share_a_description(repo) -> None:
    graph = repo.asset_graph
    by_description: dict[str, list[str]] = {}
    for key in graph.get_all_asset_keys():
        by_description.setdefault(graph.get(key).description, []).append(key.to_user_string())
    assert [keys for keys in by_description.values() if len(keys) > 1] == []


def _columns(metadata: dict) -> dg.TableSchema | None:
    value = metadata.get("dagster/column_schema")
    return getattr(value, "schema", value)  # as declared, or wrapped as a metadata value


def test_every_table_shows_the_columns_it_is_written_with(repo) -> None:
    graph = repo.asset_graph
    tables = [k for k in graph.get_all_asset_keys()
              if k.path[0] in ("bronze", "silver", "quarantine") and k not in WITHOUT_FIXED_COLUMNS]
    assert len(tables) >= 29
    for key in tables:
        schema = _columns(graph.get(key).metadata)
        assert schema is not None, key
        assert [c.name for c in schema.columns] == list(TABLE_SCHEMAS[key]), key
    # Gold models show their columns typed, from the dbt YAML's data_type.
    for key in (k for k in graph.get_all_asset_keys() if k.path[0] == "gold"):
        schema = _columns(graph.get(key).metadata)
        assert schema is not None and schema.columns, key
        assert all(c.type and c.type != "unknown" for c in schema.columns), key
    messages = _columns(graph.get(dg.AssetKey(["silver", "telegram_messages"])).metadata)
    columns = {c.name: c for c in messages.columns}
    assert columns["sent_at"].type == "timestamp[us, UTC]"
    assert columns["chat_id"].type == "int64"
    # Described as in the dbt catalogue (the docs and the Delta table say the same).
    assert columns["_source_file"].description == "Raw landing-zone key of the file the update came from."
    assert all(c.description for c in messages.columns)
    assert TABLE_SCHEMAS[dg.AssetKey(["silver", "telegram_messages"])] == telegram.SILVER_SCHEMA


def test_every_check_says_what_it_checks(repo) -> None:
    graph = repo.asset_graph
    for check in graph.asset_check_keys:
        assert graph.get_check_spec(check).description, check
    spec = graph.get_check_spec(dg.AssetCheckKey(
        dg.AssetKey(["gold", "fct_rating"]), "accepted_values_fct_rating_source__imdb__movielens__tmdb"))
    assert spec.description == "`source` is one of: imdb, movielens, tmdb."


def test_bronze_and_movies_silver_have_checks(repo) -> None:
    checks = {(c.asset_key.to_user_string(), c.name) for c in repo.asset_graph.asset_check_keys}
    for bronze in ("bronze/telegram_updates", "bronze/twitter_records"):
        assert (bronze, "file_accounting") in checks
    movies_silver = [k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()
                     if k.path[0] == "silver" and repo.asset_graph.get(k).group_name == "movies"
                     and k not in WITHOUT_FIXED_COLUMNS]
    assert len(movies_silver) == 16
    for key in movies_silver:
        assert (key, "unique_key_and_columns") in checks


def test_settings_set_in_the_environment_show_as_env_vars(monkeypatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:very-secret-token")
    monkeypatch.delenv("TELEGRAM_API_BASE_URL", raising=False)
    telegram_resource = defs().resources["telegram"]
    assert telegram_resource.bot_token == dg.EnvVar("TELEGRAM_BOT_TOKEN")
    assert telegram_resource.api_base_url is None  # unset: the field keeps its default
    assert "very-secret-token" not in repr(telegram_resource)


RESOURCE_SETTINGS = {"telegram": TELEGRAM_ENV, "twitter": TWITTER_ENV, "tmdb": TMDB_ENV,
                     "imdb": IMDB_ENV, "movielens": MOVIELENS_ENV, "csv_drop": CSV_DROP_ENV,
                     "lake": {"root": "LAKEHOUSE_ROOT"}}


def test_every_resource_setting_comes_from_its_variable_and_nowhere_else(monkeypatch) -> None:
    values = {"LAKEHOUSE_ROOT": "data/lake"}
    monkeypatch.setenv("LAKEHOUSE_MOVIES_SAMPLE", "0")
    for variables in RESOURCE_SETTINGS.values():
        for var in variables.values():
            monkeypatch.setenv(var, values.get(var, f"{var.lower()}-value"))
    resources = defs().resources
    for name, variables in RESOURCE_SETTINGS.items():
        for field, var in variables.items():
            assert getattr(resources[name], field) == dg.EnvVar(var), (name, field)
    assert resources["imdb"].use_sample is False and resources["movielens"].use_sample is False
    # A resource built without them reads no variable behind the UI's back.
    assert TwitterResource().is_sample and TmdbResource().is_sample
    assert TelegramResource().is_sample and TelegramResource().allowed_chat_ids() == frozenset()
    assert ImdbResource().is_sample and MovieLensResource().is_sample
    assert CsvDropResource().declared_encoding() is None


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


def test_table_upkeep_is_scheduled(repo) -> None:
    schedule = repo.get_schedule_def("lake_maintenance_schedule")
    assert schedule.job_name == "lake_maintenance_job"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
