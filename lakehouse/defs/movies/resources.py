"""The movie sources as resources, their settings taken from the environment
(``lakehouse.settings``)."""

import dagster as dg

from lakehouse.settings import env_fields, movies_use_sample
from lakehouse.sources.csv_drop import CSV_DROP_ENV, CsvDropResource
from lakehouse.sources.imdb import IMDB_ENV, ImdbResource
from lakehouse.sources.movielens import MOVIELENS_ENV, MovieLensResource
from lakehouse.sources.tmdb import TMDB_ENV, TmdbResource


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={
        "imdb": ImdbResource(**env_fields(IMDB_ENV), **movies_use_sample()),
        "movielens": MovieLensResource(**env_fields(MOVIELENS_ENV), **movies_use_sample()),
        "csv_drop": CsvDropResource(**env_fields(CSV_DROP_ENV)),
        "tmdb": TmdbResource(**env_fields(TMDB_ENV)),
    })
