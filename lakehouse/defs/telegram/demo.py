"""The Telegram part of `make demo`: the sample group chat from raw to silver."""

import dagster as dg
import polars as pl

from lakehouse.defs.telegram.assets import (
    telegram_bronze,
    telegram_raw_getupdates,
    telegram_silver,
)
from lakehouse.lake.delta import scan
from lakehouse.lake.location import Lake
from lakehouse.lake.resource import LakeResource
from lakehouse.settings import env_values
from lakehouse.sources.telegram import TELEGRAM_ENV, TelegramResource
from lakehouse.sources.telegram_sample import SAMPLE_DAYS, SAMPLE_END_DATE


def materialize_sample(instance: dg.DagsterInstance) -> None:
    resources = {"lake": LakeResource(), "telegram": TelegramResource(**env_values(TELEGRAM_ENV))}
    dg.materialize([telegram_raw_getupdates], instance=instance, resources=resources)
    dg.materialize([telegram_bronze], instance=instance, resources=resources)
    first = SAMPLE_END_DATE.toordinal() - SAMPLE_DAYS + 1
    dg.materialize([telegram_silver], instance=instance, resources=resources, tags={
        "dagster/asset_partition_range_start": type(SAMPLE_END_DATE).fromordinal(first).isoformat(),
        "dagster/asset_partition_range_end": SAMPLE_END_DATE.isoformat(),
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
