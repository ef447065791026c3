"""Jobs of the movie sources: one per source refresh, the TMDB backlog, and one CSV drop load
(the movie gold models follow every refresh by themselves: gold_automation_sensor)."""

import dagster as dg

from lakehouse.defs.movies.assets import (
    TmdbRunConfig,
    csv_drop_partitions,
    csv_drop_raw,
    csv_drop_silver,
    imdb_raw,
    imdb_silver_assets,
    movielens_raw,
    movielens_silver,
    tmdb_raw,
    tmdb_silver,
)

imdb_job = dg.define_asset_job(
    "movies_imdb_job", selection=dg.AssetSelection.assets(imdb_raw, *imdb_silver_assets),
    description="Conditional download of the IMDB datasets; silver rebuilt only when changed.")
movielens_job = dg.define_asset_job(
    "movies_movielens_job", selection=dg.AssetSelection.assets(movielens_raw, movielens_silver),
    description="Conditional download of the MovieLens release; silver rebuilt when changed.")
tmdb_job = dg.define_asset_job(
    "movies_tmdb_job", selection=dg.AssetSelection.assets(tmdb_raw, tmdb_silver),
    description="TMDB enrichment of the titles not yet enriched, then the TMDB silver tables.")
tmdb_backlog_job = dg.define_asset_job(
    "movies_tmdb_backlog_job", selection=dg.AssetSelection.assets(tmdb_raw, tmdb_silver),
    config=dg.RunConfig(ops={"tmdb_raw": TmdbRunConfig(backlog=True)}),
    description="Launch by hand to fill every candidate title (e.g. all ml-25m links) at the "
    "rate limit, chunk by chunk; an interrupted run is launched again and resumes.")
csv_drop_job = dg.define_asset_job(
    "movies_csv_drop_job", selection=dg.AssetSelection.assets(csv_drop_raw, csv_drop_silver),
    partitions_def=csv_drop_partitions,
    description="Land one dropped CSV unmodified and load it into its silver table.")
