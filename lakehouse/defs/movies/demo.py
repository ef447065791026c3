"""The movies part of `make demo`: sample IMDB, MovieLens, CSV drops and TMDB to silver."""

from pathlib import Path

import dagster as dg
import polars as pl

from lakehouse.defs.movies.assets import (
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
from lakehouse.lake.delta import open_table, scan
from lakehouse.lake.location import Lake
from lakehouse.lake.resource import LakeResource
from lakehouse.settings import env_values
from lakehouse.sources.csv_drop import CSV_DROP_ENV, CsvDropResource, write_sample_drop
from lakehouse.sources.imdb import ImdbResource
from lakehouse.sources.movielens import MovieLensResource
from lakehouse.sources.tmdb import TmdbResource


def sample_resources(drop_dir: Path | None = None) -> dict:
    return {"lake": LakeResource(), "imdb": ImdbResource(use_sample=True),
            "movielens": MovieLensResource(use_sample=True),
            "tmdb": TmdbResource(use_sample=True),
            "csv_drop": CsvDropResource(**{**env_values(CSV_DROP_ENV),
                                           **({"drop_dir": str(drop_dir)} if drop_dir else {})})}


def materialize_sample(instance: dg.DagsterInstance, drop_dir: Path | None = None) -> None:
    res = sample_resources(drop_dir)
    folder = res["csv_drop"].folder()
    specs = [f.stem for f in write_sample_drop(folder)]
    known = set(instance.get_dynamic_partitions(csv_drop_partitions.name))
    instance.add_dynamic_partitions(csv_drop_partitions.name, [s for s in specs if s not in known])
    dg.materialize([imdb_raw, *imdb_silver_assets, movielens_raw, movielens_silver],
                   instance=instance, resources=res)
    for spec in specs:
        dg.materialize([csv_drop_raw, csv_drop_silver], instance=instance, resources=res,
                       partition_key=spec)
    dg.materialize([tmdb_raw, tmdb_silver], instance=instance, resources=res)


def summary(lake: Lake) -> str:
    uri = lake.table_uri("gold", "action_adventure_overview")
    if open_table(lake, uri) is None:
        return "Movies: gold.action_adventure_overview was not built"
    overview = scan(lake, uri).sort("year").collect()
    with pl.Config(tbl_rows=15, tbl_hide_dataframe_shape=True, tbl_width_chars=140,
                   tbl_cols=10):
        return "\n".join(["Movies: gold.action_adventure_overview (Action and Adventure by year)",
                          str(overview)])
