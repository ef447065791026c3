"""The Telegram resource, its settings taken from the environment (``lakehouse.settings``)."""

import dagster as dg

from lakehouse.settings import env_fields
from lakehouse.sources.telegram import TelegramResource


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"telegram": TelegramResource(**env_fields({
        "bot_token": "TELEGRAM_BOT_TOKEN", "api_base_url": "TELEGRAM_API_BASE_URL",
        "chat_ids": "TELEGRAM_CHAT_IDS"}))})
