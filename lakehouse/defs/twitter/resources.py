"""The Twitter resource, its settings taken from the environment (``lakehouse.settings``)."""

import dagster as dg

from lakehouse.settings import env_fields
from lakehouse.sources.twitter import TWITTER_ENV, TwitterResource


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"twitter": TwitterResource(**env_fields(TWITTER_ENV))})
