"""The movie sources as resources, their settings taken from the environment
(``lakehouse.settings``)."""

import dagster as dg

from lakehouse.settings import env_fields
from lakehouse.sources.csv_drop import ENCODING_ENV, CsvDropResource
from lakehouse.sources.imdb import ImdbResource
from lakehouse.sources.movielens import MovieLensResource
from lakehouse.sources.tmdb import TmdbResource


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={
        "imdb": ImdbResource(**env_fields({"base_url": "IMDB_DATASETS_BASE_URL"})),
        "movielens": MovieLensResource(**env_fields({"url": "MOVIELENS_URL"})),
        "csv_drop": CsvDropResource(**env_fields({"drop_dir": "LAKEHOUSE_DROP_DIR",
                                                  "encoding": ENCODING_ENV})),
        "tmdb": TmdbResource(**env_fields({"api_key": "TMDB_API_KEY",
                                           "api_base_url": "TMDB_API_BASE_URL"})),
    })
