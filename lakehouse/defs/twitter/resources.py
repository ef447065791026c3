"""The Twitter resource, its settings taken from the environment (``lakehouse.settings``)."""

import dagster as dg

from lakehouse.settings import env_fields
from lakehouse.sources.twitter import TwitterResource


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"twitter": TwitterResource(**env_fields({
        "bearer_token": "TWITTER_BEARER_TOKEN", "api_base_url": "TWITTER_API_BASE_URL",
        "search_query": "TWITTER_SEARCH_QUERY"}))})
