"""Weekly IMDB and MovieLens refreshes (cheap when nothing changed: a 304 and no new version)
and a daily TMDB enrichment of the titles not yet enriched (a per-run budget). The TMDB backlog
job (``jobs.py``) is launched by hand."""

from __future__ import annotations

import dagster as dg

from lakehouse.defs.movies.jobs import imdb_job, movielens_job, tmdb_job

imdb_weekly = dg.ScheduleDefinition(
    name="movies_imdb_weekly", job=imdb_job, cron_schedule="0 3 * * 1",
    execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING)
movielens_weekly = dg.ScheduleDefinition(
    name="movies_movielens_weekly", job=movielens_job, cron_schedule="30 3 * * 1",
    execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING)

tmdb_daily = dg.ScheduleDefinition(
    name="movies_tmdb_daily", job=tmdb_job, cron_schedule="0 5 * * *",
    execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING)
