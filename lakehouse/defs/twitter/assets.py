"""Twitter assets: raw search pages and stream batches -> bronze records (+ quarantine) ->
silver tweets, users, media, hashtags, mentions, urls, matching rules and sentiment.

Runs are driven by raw files: the sensor asks for one run per new file (config ``files``), so a
run costs in proportion to its files. The loads themselves are ``lakehouse.load.twitter``.
"""


from collections.abc import Iterator

import dagster as dg
import polars as pl

from lakehouse.defs.raw_files import (
    RawFilesConfig,
    bronze_load_specs,
    file_accounting,
    file_accounting_spec,
    raw_keys_to_load,
)
from lakehouse.defs.specs import delta_table_spec
from lakehouse.lake.delta import delta_metadata, open_table, scan
from lakehouse.lake.location import Lake
from lakehouse.lake.resource import LakeResource
from lakehouse.lake.stagetimes import StageTimes, stage_summary
from lakehouse.load import twitter as tables
from lakehouse.load.twitter import bronze_ledger, load_bronze, load_silver
from lakehouse.sources import twitter as landing
from lakehouse.sources.twitter import RAW_PREFIXES, SEARCH_PREFIX, TwitterResource, poll_search
from lakehouse.transforms.sentiment import LABELS

GROUP = "twitter"
RAW_SEARCH = dg.AssetKey(landing.RAW_SEARCH)
RAW_STREAM = dg.AssetKey(landing.RAW_STREAM)
# The asset key is the table's only name: each is the load module's (layer, table).
BRONZE_TWEETS = dg.AssetKey(tables.BRONZE)
QUARANTINE = dg.AssetKey(tables.QUARANTINE)
SILVER_TWEETS = dg.AssetKey(tables.TWEETS)
SILVER_USERS = dg.AssetKey(tables.USERS)
SILVER_HASHTAGS = dg.AssetKey(tables.HASHTAGS)
SILVER_MENTIONS = dg.AssetKey(tables.MENTIONS)
SILVER_URLS = dg.AssetKey(tables.URLS)
SILVER_SENTIMENT = dg.AssetKey(tables.SENTIMENT)
SILVER_MEDIA = dg.AssetKey(tables.MEDIA)
SILVER_MATCHING_RULES = dg.AssetKey(tables.MATCHING_RULES)
SILVER_KEYS = (SILVER_TWEETS, SILVER_USERS, SILVER_HASHTAGS, SILVER_MENTIONS, SILVER_URLS,
               SILVER_SENTIMENT, SILVER_MEDIA, SILVER_MATCHING_RULES)


@dg.asset(
    key=RAW_SEARCH,
    group_name=GROUP,
    kinds={"twitter", "json"},
    description="Recent-search pages (API v2, tweet/user/place fields and expansions) landed "
                "byte-for-byte under raw/twitter/search/YYYY/MM/DD/. since_id is the "
                "high-water mark kept in raw/twitter/state/search.json; a poll stopped by a "
                "distant rate-limit reset saves its next page token and the next run resumes.",
)
def twitter_raw_search(lake: LakeResource, twitter: TwitterResource) -> dg.MaterializeResult:
    the_lake = lake.lake()
    result = poll_search(twitter.search_api(), the_lake, twitter.query(),
                         max_pages=twitter.max_pages_per_run,
                         max_wait=twitter.max_wait_seconds)
    return dg.MaterializeResult(metadata={
        "pages_landed": len(result.keys),
        "tweets_landed": result.tweets,
        "since_id_used": result.since_id or "none",
        "since_id_now": result.mark.since_id or "none",
        "complete": result.complete,
        "stopped_because": result.stopped_because or "all pages landed",
        "possibly_missing": " to ".join(result.gap) if result.gap else "none",
        "backend": "sample" if twitter.is_sample else "api v2",
        "dagster/uri": the_lake.uri(SEARCH_PREFIX),
    })


twitter_raw_stream = dg.AssetSpec(
    RAW_STREAM,
    group_name=GROUP,
    kinds={"twitter", "json"},
    description="Sample/filtered stream lines landed by `lakehouse twitter stream` as NDJSON "
                "batches under raw/twitter/stream/YYYY/MM/DD/ (flushed at 128 MB or 5 min).",
)


@dg.multi_asset(
    specs=bronze_load_specs(
        BRONZE_TWEETS, QUARANTINE, GROUP, [RAW_SEARCH, RAW_STREAM],
        bronze_description="One row per raw record (a search page or a stream line): the record as JSON "
                           "text, its tweets, users and places parsed, spec, tweet_count, newest_id, "
                           "_source_file, _record_index, _ingested_at. Re-loading a raw file replaces its "
                           "rows.",
        quarantine_description="Raw Twitter records or single tweets that could not be used (not JSON, no "
                               "tweet; a tweet whose id is not a 1-19 digit integer, without text or "
                               "created_at), with the reason, the record as received, its file, index and "
                               "the tweet's JSON path. One bad tweet never quarantines its page."),
    check_specs=[file_accounting_spec(BRONZE_TWEETS)],
)
def twitter_bronze(context: dg.AssetExecutionContext, config: RawFilesConfig,
                   lake: LakeResource) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    the_lake = lake.lake()
    keys = raw_keys_to_load(the_lake, config, RAW_PREFIXES, bronze_ledger(the_lake))
    if not keys:
        yield dg.MaterializeResult(asset_key=BRONZE_TWEETS, metadata={"files": 0})
        yield dg.MaterializeResult(asset_key=QUARANTINE, metadata={"files": 0})
        yield file_accounting(the_lake, BRONZE_TWEETS, QUARANTINE, [], 0)
        return
    times = StageTimes()
    # Silver in the same run (the sensor's runs; in process) starts from the rows this load
    # keeps instead of reading them back from bronze.
    with_silver = SILVER_TWEETS in context.job_def.asset_layer.selected_asset_keys
    load = load_bronze(the_lake, keys, context.log.info, times, keep_for_silver=with_silver)
    context.log.info(stage_summary(times))
    bronze_uri, quarantine_uri = the_lake.table_uri(*tables.BRONZE), the_lake.table_uri(*tables.QUARANTINE)
    yield dg.MaterializeResult(asset_key=BRONZE_TWEETS, metadata={
        **delta_metadata(the_lake, bronze_uri), **load.totals(), "tweets": load.tweets})
    quarantine_table = open_table(the_lake, quarantine_uri)
    quarantine_meta = (delta_metadata(the_lake, quarantine_uri, table=quarantine_table)
                       if quarantine_table else {})
    yield dg.MaterializeResult(asset_key=QUARANTINE, metadata={
        **quarantine_meta, "quarantined_this_run": load.quarantined})
    yield file_accounting(the_lake, BRONZE_TWEETS, QUARANTINE, keys, load.records)


def _checks(lake: Lake, tweets: pl.DataFrame,
            sentiment: pl.DataFrame) -> list[dg.AssetCheckResult]:
    # Read back from the table as written (a concurrent writer would show here), not the frame.
    uri = lake.table_uri(*tables.TWEETS)
    table = open_table(lake, uri)
    written = (scan(lake, uri, table)
               .filter(pl.col("id").is_in(tweets.get_column("id").unique().to_list()))
               .select("id").collect() if table else tweets.select("id"))
    duplicates = written.height - written.get_column("id").n_unique()
    bad_labels = sentiment.filter(~pl.col("sentiment_label").is_in(LABELS)).height
    out_of_range = sentiment.filter(~pl.col("polarity").is_between(-1, 1)
                                    | ~pl.col("subjectivity").is_between(0, 1)).height
    return [
        dg.AssetCheckResult(asset_key=SILVER_TWEETS, check_name="unique_tweet_id",
                            passed=duplicates == 0, metadata={"duplicate_rows": duplicates}),
        dg.AssetCheckResult(asset_key=SILVER_SENTIMENT, check_name="label_and_ranges",
                            passed=bad_labels == 0 and out_of_range == 0,
                            metadata={"unknown_labels": bad_labels,
                                      "scores_out_of_range": out_of_range}),
    ]


# Each silver table: the table it is derived from, and what its rows are.
SILVER_TABLES: dict[dg.AssetKey, tuple[dg.AssetKey, str]] = {
    SILVER_TWEETS: (BRONZE_TWEETS,
        "One row per tweet id across search, stream and the tweets they reference "
        "(includes.tweets, seen_via_reference): full text (note_tweet), created_at, date (UTC), "
        "author, lang, the posting client (source) and how we got it (collected_via), "
        "retweet/reply/quote flags and referenced ids, public metrics, place and country, context "
        "annotations, media keys, edit links (edit_history_tweet_ids, edit_of, "
        "latest_version_id). Delta, partitioned by date."),
    SILVER_USERS: (BRONZE_TWEETS,
        "One row per user id from includes.users (latest wins): handle, name, protected, url, "
        "verified and verified_type, public metrics."),
    SILVER_HASHTAGS: (SILVER_TWEETS,
        "One row per hashtag of a tweet (tweet_id, position)."),
    SILVER_MENTIONS: (SILVER_TWEETS,
        "One row per @mention of a tweet (tweet_id, position); user_id from the mention, else "
        "from includes.users by handle."),
    SILVER_URLS: (SILVER_TWEETS,
        "One row per URL of a tweet, with the expanded URL's domain."),
    SILVER_SENTIMENT: (SILVER_TWEETS,
        "One row per English or Portuguese tweet: clean_text, polarity [-1, 1], subjectivity "
        "[0, 1], sentiment_label (Negative/Neutral/Positive), model, created_at, date. A retweet "
        "is scored on its original's whole text."),
    SILVER_MEDIA: (BRONZE_TWEETS,
        "One row per media_key from includes.media (photo, video, animated_gif): type, url or "
        "preview, size, duration, alt text, view count. Tweets list theirs in media_keys."),
    SILVER_MATCHING_RULES: (BRONZE_TWEETS,
        "One row per filtered-stream rule that matched a tweet (tweet_id, rule_id, rule_tag), "
        "from matching_rules."),
}


@dg.multi_asset(
    specs=[delta_table_spec(key, GROUP, deps=[upstream], description=description)
           for key, (upstream, description) in SILVER_TABLES.items()],
    check_specs=[
        dg.AssetCheckSpec("unique_tweet_id", asset=SILVER_TWEETS,
                          description="One row per tweet id among the tweets of the run, "
                                      "read back from the table as written."),
        dg.AssetCheckSpec("label_and_ranges", asset=SILVER_SENTIMENT,
                          description="Labels are Negative/Neutral/Positive; polarity in "
                                      "[-1, 1], subjectivity in [0, 1]."),
    ],
)
def twitter_silver(context: dg.AssetExecutionContext, config: RawFilesConfig,
                   lake: LakeResource) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    the_lake = lake.lake()
    times = StageTimes()
    load = load_silver(the_lake, config.files, times)
    source = "bronze read back" if load.read_bronze else "the rows this run's bronze load kept"
    context.log.info(f"{load.tweets.height} tweets over {len(load.days)} days, "
                     f"{load.rows[tables.USERS].height} users, from {source}; "
                     f"{stage_summary(times)}")
    unpartitioned = (tables.USERS, tables.MEDIA)
    for table, frame in load.rows.items():
        uri = the_lake.table_uri(*table)
        by_day = table not in unpartitioned
        # As this run's commits left it (the load keeps each table it wrote: every open lists
        # the table's whole log on a local lake); a table not written this run, as it is.
        written = load.tables.get(table) or open_table(the_lake, uri)
        meta = (delta_metadata(the_lake, uri, frame if by_day else None, table=written)
                if written else {})
        days = {"days_rewritten": dg.MetadataValue.json([d.isoformat() for d in load.days])
                } if by_day else {}
        yield dg.MaterializeResult(asset_key=dg.AssetKey(table), metadata={
            **meta, "rows_this_run": frame.height, **days, "read_bronze": load.read_bronze})
    yield from _checks(the_lake, load.tweets, load.sentiment)
