"""Weekly IMDB and MovieLens refreshes (cheap when nothing changed: a 304 and no new version),
a daily TMDB enrichment of the titles not yet enriched (a per-run budget), and a TMDB
backlog job to launch by hand that fills every title."""

from __future__ import annotations

import dagster as dg

from lakehouse.defs.movies.assets import (
    TmdbRunConfig,
    imdb_silver_assets,
    raw_imdb,
    raw_movielens,
    raw_tmdb,
    silver_movielens,
    silver_tmdb,
)

# The movie gold models follow every refresh by themselves (gold_automation_sensor).

imdb_job = dg.define_asset_job(
    "movies_imdb_job", selection=dg.AssetSelection.assets(raw_imdb, *imdb_silver_assets),
    description="Conditional download of the IMDB datasets; silver rebuilt only when changed.")
movielens_job = dg.define_asset_job(
    "movies_movielens_job", selection=dg.AssetSelection.assets(raw_movielens, silver_movielens),
    description="Conditional download of the MovieLens release; silver rebuilt when changed.")

imdb_weekly = dg.ScheduleDefinition(
    name="movies_imdb_weekly", job=imdb_job, cron_schedule="0 3 * * 1",
    execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING)
movielens_weekly = dg.ScheduleDefinition(
    name="movies_movielens_weekly", job=movielens_job, cron_schedule="30 3 * * 1",
    execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING)

tmdb_job = dg.define_asset_job(
    "movies_tmdb_job", selection=dg.AssetSelection.assets(raw_tmdb, silver_tmdb),
    description="TMDB enrichment of the titles not yet enriched, then the TMDB silver tables.")
tmdb_backlog_job = dg.define_asset_job(
    "movies_tmdb_backlog_job", selection=dg.AssetSelection.assets(raw_tmdb, silver_tmdb),
    config=dg.RunConfig(ops={"raw_tmdb": TmdbRunConfig(backlog=True)}),
    description="Launch by hand to fill every candidate title (e.g. all ml-25m links) at the "
    "rate limit, chunk by chunk; an interrupted run is launched again and resumes.")
tmdb_daily = dg.ScheduleDefinition(
    name="movies_tmdb_daily", job=tmdb_job, cron_schedule="0 5 * * *",
    execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING)
