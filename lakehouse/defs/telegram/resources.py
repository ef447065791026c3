"""The Telegram resource. Its settings fall back to the environment when a run starts."""

import dagster as dg

from lakehouse.sources.telegram import TelegramResource


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"telegram": TelegramResource()})
