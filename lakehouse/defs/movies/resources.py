"""The movie sources as resources. Their settings fall back to the environment at run time."""

import dagster as dg

from lakehouse.sources.csv_drop import CsvDropResource
from lakehouse.sources.imdb import ImdbResource
from lakehouse.sources.movielens import MovieLensResource
from lakehouse.sources.tmdb import TmdbResource


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={
        "imdb": ImdbResource(),
        "movielens": MovieLensResource(),
        "csv_drop": CsvDropResource(),
        "tmdb": TmdbResource(),
    })
