"""Jobs of the Telegram pipeline: poll (and load what the poll landed), load raw files, rebuild
days of silver (gold follows by itself: gold_automation_sensor)."""

import dagster as dg

from lakehouse.defs.telegram.assets import (
    BRONZE_UPDATES,
    QUARANTINE,
    RAW_GETUPDATES,
    SILVER_MESSAGES,
    message_days,
)

# A poll lands its answers and loads them into bronze in the same run: one run's start-up per
# poll instead of two (the load is most of a poll's work). The silver days follow in their own
# run (telegram_silver_sensor): their partitions are added from what bronze loaded.
telegram_poll_job = dg.define_asset_job(
    "telegram_poll_job",
    selection=dg.AssetSelection.assets(RAW_GETUPDATES, BRONZE_UPDATES, QUARANTINE),
    description="Land new updates from getUpdates and load the answers landed into bronze.",
)
telegram_bronze_job = dg.define_asset_job(
    "telegram_bronze_job", selection=dg.AssetSelection.assets(BRONZE_UPDATES, QUARANTINE),
    description="Load raw Telegram files into bronze (config: files).",
)
telegram_daily_etl_job = dg.define_asset_job(
    "telegram_daily_etl_job",
    selection=dg.AssetSelection.assets(SILVER_MESSAGES),
    partitions_def=message_days,
    description="Rebuild days of silver messages (the Telegram gold models follow by "
                "themselves: gold_automation_sensor).",
)
