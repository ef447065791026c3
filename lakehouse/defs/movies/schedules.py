"""Weekly IMDB and MovieLens refreshes (cheap when nothing changed: a 304 and no new version)."""

from __future__ import annotations

import dagster as dg

from lakehouse.defs.movies.assets import (
    imdb_silver_assets,
    raw_imdb,
    raw_movielens,
    silver_movielens,
)

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
