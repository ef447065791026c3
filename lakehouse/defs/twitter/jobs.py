"""Jobs of the Twitter pipeline: search, process raw files (gold follows by itself)."""

import dagster as dg

from lakehouse.defs.twitter.assets import (
    BRONZE_TWEETS,
    QUARANTINE,
    RAW_SEARCH,
    SILVER_KEYS,
)

twitter_search_job = dg.define_asset_job(
    "twitter_search_job", selection=dg.AssetSelection.assets(RAW_SEARCH),
    description="Land the tweets newer than the since_id mark (recent search).",
)
twitter_files_job = dg.define_asset_job(
    "twitter_files_job",
    selection=dg.AssetSelection.assets(BRONZE_TWEETS, QUARANTINE, *SILVER_KEYS),
    description="Raw Twitter files (config: files) into bronze, quarantine and silver.",
)
