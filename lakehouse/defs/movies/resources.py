"""The movie sources as resources. Their settings fall back to the environment at run time."""

import dagster as dg

from lakehouse.sources.csv_drop import CsvDropResource
from lakehouse.sources.imdb import ImdbResource
from lakehouse.sources.movielens import MovieLensResource


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={
        "imdb": ImdbResource(),
        "movielens": MovieLensResource(),
        "csv_drop": CsvDropResource(),
    })
