"""Jobs of the movie sources: one per source refresh, the TMDB backlog, and one CSV drop load
(the movie gold models follow every refresh by themselves: gold_automation_sensor)."""

import dagster as dg

from lakehouse.defs.movies.assets import (
    TmdbRunConfig,
    csv_drop_partitions,
    imdb_silver_assets,
    raw_csv_drop,
    raw_imdb,
    raw_movielens,
    raw_tmdb,
    silver_csv_drop,
    silver_movielens,
    silver_tmdb,
)

imdb_job = dg.define_asset_job(
    "movies_imdb_job", selection=dg.AssetSelection.assets(raw_imdb, *imdb_silver_assets),
    description="Conditional download of the IMDB datasets; silver rebuilt only when changed.")
movielens_job = dg.define_asset_job(
    "movies_movielens_job", selection=dg.AssetSelection.assets(raw_movielens, silver_movielens),
    description="Conditional download of the MovieLens release; silver rebuilt when changed.")
tmdb_job = dg.define_asset_job(
    "movies_tmdb_job", selection=dg.AssetSelection.assets(raw_tmdb, silver_tmdb),
    description="TMDB enrichment of the titles not yet enriched, then the TMDB silver tables.")
tmdb_backlog_job = dg.define_asset_job(
    "movies_tmdb_backlog_job", selection=dg.AssetSelection.assets(raw_tmdb, silver_tmdb),
    config=dg.RunConfig(ops={"raw_tmdb": TmdbRunConfig(backlog=True)}),
    description="Launch by hand to fill every candidate title (e.g. all ml-25m links) at the "
    "rate limit, chunk by chunk; an interrupted run is launched again and resumes.")
csv_drop_job = dg.define_asset_job(
    "movies_csv_drop_job", selection=dg.AssetSelection.assets(raw_csv_drop, silver_csv_drop),
    partitions_def=csv_drop_partitions,
    description="Land one dropped CSV unmodified and load it into its silver table.")
