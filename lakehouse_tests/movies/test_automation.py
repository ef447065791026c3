"""Schedules and the drop-folder sensor: cursors, run keys, dynamic partitions."""

import dagster as dg

from lakehouse.defs.movies.assets import csv_drop_partitions, csv_drop_raw, csv_drop_silver
from lakehouse.defs.movies.schedules import imdb_weekly, movielens_weekly, tmdb_daily
from lakehouse.defs.movies.sensors import movies_csv_drop_sensor
from lakehouse.lake.resource import LakeResource
from lakehouse.sources.csv_drop import CsvDropResource


def tick(instance: dg.DagsterInstance, drop, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={
        "csv_drop": CsvDropResource(drop_dir=str(drop)), "lake": LakeResource()})
    return movies_csv_drop_sensor(context)


def test_drop_sensor_requests_each_new_or_changed_file_once(tmp_path, lake) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "Movies.csv").write_text("id|title\ntt0133093|The Matrix\n")
    (drop / ".partial.csv").write_text("still uploading")
    instance = dg.DagsterInstance.ephemeral()
    first = tick(instance, drop, None)
    assert [r.partition_key for r in first.run_requests] == ["movies"]
    assert first.run_requests[0].run_key.startswith("Movies.csv:")
    assert first.dynamic_partitions_requests[0].partition_keys == ["movies"]
    instance.add_dynamic_partitions(csv_drop_partitions.name, ["movies"])
    # Nothing new: no run; a second file and a rewrite of the first: one run each.
    assert tick(instance, drop, first.cursor).run_requests == []
    (drop / "series.csv").write_text("id;title\ntt0903747;Breaking Bad\n")
    (drop / "Movies.csv").write_text("id|title\ntt0133093|The Matrix\ntt0076759|Star Wars\n")
    second = tick(instance, drop, first.cursor)
    assert sorted(r.partition_key for r in second.run_requests) == ["movies", "series"]
    assert second.dynamic_partitions_requests[0].partition_keys == ["series"]
    assert second.run_requests[0].run_key != first.run_requests[0].run_key


def test_a_loaded_drop_folder_asks_for_nothing_even_without_a_cursor(tmp_path, lake) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "movies.csv").write_text("id|title\ntt0133093|The Matrix\n")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(csv_drop_partitions.name, ["movies"])
    resources = {"csv_drop": CsvDropResource(drop_dir=str(drop)), "lake": LakeResource()}
    assert dg.materialize([csv_drop_raw, csv_drop_silver], partition_key="movies",
                          instance=instance, resources=resources).success
    assert not tick(instance, drop, None).run_requests
    (drop / "movies.csv").write_text("id|title\ntt0133093|The Matrix\ntt0076759|Star Wars\n")
    assert [r.partition_key for r in tick(instance, drop, None).run_requests] == ["movies"]


def test_schedules_refresh_weekly_and_enrich_daily() -> None:
    assert imdb_weekly.cron_schedule == "0 3 * * 1"
    assert movielens_weekly.cron_schedule == "30 3 * * 1"
    assert tmdb_daily.cron_schedule == "0 5 * * *"
    assert {imdb_weekly.job_name, movielens_weekly.job_name, tmdb_daily.job_name} == {
        "movies_imdb_job", "movies_movielens_job", "movies_tmdb_job"}


def test_definitions_hold_the_movie_graph() -> None:
    from lakehouse.definitions import defs

    definitions = defs()
    keys = {k.to_user_string() for k in definitions.resolve_asset_graph().get_all_asset_keys()}
    expected = {"raw/imdb/title_basics", "raw/movielens/release", "raw/tmdb/answers", "raw/csv_drop/file",
                "silver/imdb_titles", "silver/movielens_ratings", "silver/tmdb_movies",
                "silver/csv_drops", "gold/dim_title", "gold/action_adventure_overview"}
    assert expected <= keys
    imdb_job = definitions.resolve_job_def("movies_imdb_job")
    selected = {k.to_user_string() for k in imdb_job.asset_layer.selected_asset_keys}
    assert {"raw/imdb/title_basics", "silver/imdb_titles"} <= selected
    # gold follows by itself (gold_automation_sensor), not as a step of the refresh
    assert not any(k.startswith("gold/") for k in selected)
    dim_title = definitions.resolve_asset_graph().get(dg.AssetKey(["gold", "dim_title"]))
    assert dim_title.automation_condition is not None
