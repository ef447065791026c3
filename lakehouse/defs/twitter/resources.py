"""The Twitter resource. Its settings fall back to the environment when a run starts."""

import dagster as dg

from lakehouse.sources.twitter import TwitterResource


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"twitter": TwitterResource()})
