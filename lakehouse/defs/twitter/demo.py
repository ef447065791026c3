"""The Twitter part of `make demo`: sample search pages and a stream batch, raw to silver."""

import dagster as dg
import polars as pl

from lakehouse.defs.twitter.assets import twitter_bronze, twitter_raw_search, twitter_silver
from lakehouse.lake.delta import open_table, scan
from lakehouse.lake.location import Lake
from lakehouse.lake.resource import LakeResource
from lakehouse.lake.segments import SegmentWriter
from lakehouse.load import twitter as tables
from lakehouse.settings import env_values
from lakehouse.sources.twitter import TWITTER_ENV, TwitterResource, stream_key
from lakehouse.sources.twitter_sample import SampleTwitterApi


def land_sample_stream(lake: Lake, spool_dir: str) -> list[str]:
    """One NDJSON batch of the sample stream (keep-alives skipped), as the consumer lands it.

    Its tweets overlap the search pages, so silver shows the dedup across the two sources.
    """
    writer = SegmentWriter(lake, spool_dir, stream_key)
    for line in SampleTwitterApi().stream_lines(limit=150):
        writer.append(line)
    writer.close()
    return writer.sealed


def materialize_sample(instance: dg.DagsterInstance) -> None:
    import tempfile

    resources = {"lake": LakeResource(), "twitter": TwitterResource(**env_values(TWITTER_ENV))}
    dg.materialize([twitter_raw_search], instance=instance, resources=resources)
    with tempfile.TemporaryDirectory() as spool:
        land_sample_stream(LakeResource().lake(), spool)
    # files = [] loads every raw file: the same result as one run per file, in one go.
    dg.materialize([twitter_bronze], instance=instance, resources=resources)
    dg.materialize([twitter_silver], instance=instance, resources=resources)


def summary(lake: Lake) -> str:
    lines = []
    gold_uri = lake.table_uri("gold", "twitter_tweets_by_sentiment")
    if open_table(lake, gold_uri) is not None:
        by_label = scan(lake, gold_uri).sort("sentiment_label").collect()
    else:
        by_label = (scan(lake, lake.table_uri(*tables.SENTIMENT))
                    .group_by("sentiment_label").agg(pl.len().alias("tweet_count"))
                    .sort("sentiment_label").collect())
    tweets = scan(lake, lake.table_uri(*tables.TWEETS)).select(
        pl.len().alias("rows"),
        pl.col("seen_via_reference").sum().alias("referenced"),
        pl.col("edit_of").is_not_null().sum().alias("edits"),
        pl.col("has_note_tweet").sum().alias("long"),
    ).collect().row(0, named=True)
    media_uri = lake.table_uri(*tables.MEDIA)
    rules_uri = lake.table_uri(*tables.MATCHING_RULES)
    media = (scan(lake, media_uri).select(pl.len()).collect().item()
             if open_table(lake, media_uri) else 0)
    matches = (scan(lake, rules_uri).group_by("rule_tag").len().sort("rule_tag").collect().rows()
               if open_table(lake, rules_uri) else [])
    by_lang = (scan(lake, lake.table_uri(*tables.SENTIMENT))
               .group_by("lang", "sentiment_label").agg(pl.len().alias("tweets"))
               .sort("lang", "sentiment_label").collect())
    with pl.Config(tbl_rows=12, tbl_hide_dataframe_shape=True):
        lines += [f"Twitter: {tweets['rows']} distinct tweets in {'.'.join(tables.TWEETS)} "
                  f"(search + stream; "
                  f"{tweets['referenced']} seen only through a reference, {tweets['edits']} "
                  f"edits of earlier versions, {tweets['long']} long posts), {media} media",
                  "Twitter: filtered-stream rule matches: "
                  + (", ".join(f"{tag} {n}" for tag, n in matches) or "none"),
                  "Twitter: gold.twitter_tweets_by_sentiment", str(by_label),
                  "Twitter: sentiment by language", str(by_lang)]
    return "\n".join(lines)
