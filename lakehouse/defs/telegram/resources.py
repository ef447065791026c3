"""The Telegram resource, its settings taken from the environment (``lakehouse.settings``)."""

import dagster as dg

from lakehouse.settings import env_fields
from lakehouse.sources.telegram import TELEGRAM_ENV, TelegramResource


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"telegram": TelegramResource(**env_fields(TELEGRAM_ENV))})
