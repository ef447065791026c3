"""The Telegram part of `make demo`: the sample group chat from raw to silver."""

from datetime import timedelta

import dagster as dg
import polars as pl

from lakehouse.defs.telegram.assets import (
    message_days,
    telegram_bronze,
    telegram_raw_getupdates,
    telegram_silver,
)
from lakehouse.defs.telegram.sensors import key_blocks
from lakehouse.lake.delta import scan
from lakehouse.lake.location import Lake
from lakehouse.lake.resource import LakeResource
from lakehouse.settings import env_values
from lakehouse.sources.telegram import TELEGRAM_ENV, TelegramResource
from lakehouse.sources.telegram_sample import SAMPLE_DAYS, SAMPLE_END_DATE


def materialize_sample(instance: dg.DagsterInstance) -> None:
    resources = {"lake": LakeResource(), "telegram": TelegramResource(**env_values(TELEGRAM_ENV))}
    dg.materialize([telegram_raw_getupdates], instance=instance, resources=resources)
    bronze = dg.materialize([telegram_bronze], instance=instance, resources=resources)
    # The days bronze loaded become partitions, as telegram_silver_sensor would add them (and
    # the sample week on a second demo, whose bronze load finds every file loaded already).
    loaded = bronze.asset_materializations_for_node("telegram_bronze")[0].metadata["dates"].value
    sample = {(SAMPLE_END_DATE - timedelta(days=n)).isoformat() for n in range(SAMPLE_DAYS)}
    days = sorted(set(loaded) | sample)
    instance.add_dynamic_partitions(message_days.name, days)
    keys = message_days.get_partition_keys(dynamic_partitions_store=instance)
    for first, last in key_blocks(list(keys), set(days)):
        dg.materialize([telegram_silver], instance=instance, resources=resources, tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        })


def summary(lake: Lake) -> str:
    per_day = scan(lake, lake.table_uri("gold", "telegram_messages_per_day")).sort("date").collect()
    per_user = (scan(lake, lake.table_uri("gold", "telegram_messages_per_user_per_day"))
                .group_by("user_first_name").agg(pl.col("message_count").sum())
                .sort("message_count", descending=True).collect())
    with pl.Config(tbl_rows=10, tbl_hide_dataframe_shape=True, tbl_width_chars=100):
        return "\n".join([
            "Telegram: gold.telegram_messages_per_day",
            str(per_day.select("date", "chat_title", "message_count", "active_users")),
            "Telegram: messages per user over the sample week",
            str(per_user),
        ])
