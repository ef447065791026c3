"""Twitter assets: raw search pages and stream batches -> bronze records (+ quarantine) ->
silver tweets, users, media, hashtags, mentions, urls, matching rules and sentiment.

Runs are driven by raw files: the sensor asks for one run per new file (config ``files``), so a
run costs in proportion to its files. Silver tables are Delta tables partitioned by the tweet's
UTC ``date`` and upserted on their keys (one row per tweet id across search and stream; the
last processed landing wins), touching only the files whose days and id ranges the batch
overlaps.
"""


from collections.abc import Iterator
from datetime import date, timedelta

import dagster as dg
import polars as pl

from lakehouse.defs.raw_files import (
    RawFilesConfig,
    file_accounting,
    file_accounting_spec,
    raw_keys_to_load,
)
from lakehouse.lake.delta import (
    append_replacing_sources,
    delta_metadata,
    merge_on_keys,
    open_table,
    scan,
)
from lakehouse.lake.ledger import Ledger
from lakehouse.lake.location import Lake
from lakehouse.lake.resource import LakeResource
from lakehouse.sources.twitter import (
    RAW_PREFIXES,
    SEARCH_PREFIX,
    TwitterResource,
    poll_search,
    read_raw_records,
)
from lakehouse.transforms.sentiment import LABELS, tweet_sentiment
from lakehouse.transforms.twitter import (
    TWEETS_SCHEMA,
    bronze_records,
    chain_filter,
    edit_chains,
    quarantine_records,
    sentiment_input,
    silver_hashtags,
    silver_matching_rules,
    silver_media,
    silver_mentions,
    silver_tweets,
    silver_urls,
    silver_users,
    tweets_to_upsert,
)

GROUP = "twitter"
RAW_SEARCH = dg.AssetKey(["raw", "twitter", "search"])
RAW_STREAM = dg.AssetKey(["raw", "twitter", "stream"])
BRONZE_TWEETS = dg.AssetKey(["bronze", "tweets_raw"])
QUARANTINE = dg.AssetKey(["quarantine", "twitter_quarantine"])
SILVER_TWEETS = dg.AssetKey(["silver", "tweets"])
SILVER_USERS = dg.AssetKey(["silver", "twitter_users"])
SILVER_HASHTAGS = dg.AssetKey(["silver", "tweet_hashtags"])
SILVER_MENTIONS = dg.AssetKey(["silver", "tweet_mentions"])
SILVER_URLS = dg.AssetKey(["silver", "tweet_urls"])
SILVER_SENTIMENT = dg.AssetKey(["silver", "tweet_sentiment"])
SILVER_MEDIA = dg.AssetKey(["silver", "twitter_media"])
SILVER_MATCHING_RULES = dg.AssetKey(["silver", "tweet_matching_rules"])
SILVER_KEYS = (SILVER_TWEETS, SILVER_USERS, SILVER_HASHTAGS, SILVER_MENTIONS, SILVER_URLS,
               SILVER_SENTIMENT, SILVER_MEDIA, SILVER_MATCHING_RULES)
FILES_PER_CHUNK = 200  # bounds memory of a full reload; each chunk is one bronze commit
BRONZE_TABLE = ("bronze", "tweets_raw")


@dg.asset(
    key=RAW_SEARCH,
    group_name=GROUP,
    kinds={"twitter", "json"},
    description="Recent-search pages (API v2, tweet/user/place fields and expansions) landed "
                "byte-for-byte under raw/twitter/json/search/YYYY/MM/DD/. since_id is the "
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
                "batches under raw/twitter/json/stream/YYYY/MM/DD/ (flushed at 128 MB or 5 min).",
)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(BRONZE_TWEETS, group_name=GROUP, kinds={"polars", "delta"},
                     deps=[RAW_SEARCH, RAW_STREAM],
                     description="One row per raw record (a search page or a stream line): the "
                                 "record as JSON text, its tweets, users and places parsed, "
                                 "spec, tweet_count, newest_id, _source_file, _record_index, "
                                 "_ingested_at. Re-loading a raw file replaces its rows."),
        dg.AssetSpec(QUARANTINE, group_name=GROUP, kinds={"polars", "delta"},
                     deps=[RAW_SEARCH, RAW_STREAM],
                     description="Raw Twitter records or single tweets that could not be "
                                 "used (not JSON, no tweet; a tweet whose id is not a 1-19 "
                                 "digit integer, without text or created_at), with the reason, "
                                 "the record as received, its file, index and the tweet's "
                                 "JSON path. One bad tweet never quarantines its page."),
    ],
    check_specs=[file_accounting_spec(BRONZE_TWEETS)],
)
def twitter_bronze(context: dg.AssetExecutionContext, config: RawFilesConfig,
                   lake: LakeResource) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    the_lake = lake.lake()
    ledger = Ledger(the_lake, *BRONZE_TABLE)
    keys = raw_keys_to_load(the_lake, config, RAW_PREFIXES, ledger)
    bronze_uri = the_lake.table_uri(*BRONZE_TABLE)
    quarantine_uri = the_lake.table_uri("quarantine", "twitter_quarantine")
    totals = {"records": 0, "tweets": 0, "quarantined": 0}
    for start in range(0, len(keys), FILES_PER_CHUNK):
        chunk = keys[start:start + FILES_PER_CHUNK]
        records = read_raw_records(the_lake, chunk)
        bronze = bronze_records(records.lazy()).collect()
        quarantine = quarantine_records(records.lazy()).collect()
        append_replacing_sources(the_lake, bronze_uri, bronze, chunk)
        append_replacing_sources(the_lake, quarantine_uri, quarantine, chunk)
        ledger.record(chunk)
        totals["records"] += records.height
        totals["tweets"] += int(bronze.get_column("tweet_count").sum() or 0)
        totals["quarantined"] += quarantine.height
        context.log.info(f"{len(chunk)} raw files: {bronze.height} records, "
                         f"{quarantine.height} quarantined")
    if not keys:
        yield dg.MaterializeResult(asset_key=BRONZE_TWEETS, metadata={"files": 0})
        yield dg.MaterializeResult(asset_key=QUARANTINE, metadata={"files": 0})
        yield file_accounting(the_lake, BRONZE_TWEETS, QUARANTINE, [], 0)
        return
    yield dg.MaterializeResult(asset_key=BRONZE_TWEETS, metadata={
        **delta_metadata(the_lake, bronze_uri), **totals, "files": len(keys)})
    quarantine_meta = (delta_metadata(the_lake, quarantine_uri)
                       if open_table(the_lake, quarantine_uri) else {})
    yield dg.MaterializeResult(asset_key=QUARANTINE, metadata={
        **quarantine_meta, "quarantined_this_run": totals["quarantined"]})
    yield file_accounting(the_lake, BRONZE_TWEETS, QUARANTINE, keys, totals["records"])


def merge_days(lake: Lake, uri: str, new: pl.DataFrame, keys: list[str]) -> list[date]:
    """Upsert ``new`` on ``date`` + ``keys`` (one commit) and return the days it touched.

    ``date`` is the partition column and tweet ids grow with time, so delta-rs prunes the
    target to the files of those days whose id range overlaps the batch (``streamed_exec``
    off lets it derive that pruning predicate from the batch): a batch costs in proportion
    to itself, not to the table.
    """
    if new.is_empty():
        return []
    merge_on_keys(lake, uri, new, ["date", *keys], partition_by=["date"])
    return sorted(new.get_column("date").unique().to_list())


def upsert_tweets(lake: Lake, uri: str, batch: pl.DataFrame) -> pl.DataFrame:
    """Upsert a batch of silver tweets and return the rows written.

    The rows already in silver of the batch's edit chains are read first (edits come within
    an hour of the post, so from the batch's days and the days around them), so that versions
    landed in different runs are linked and a reference never replaces a direct sighting
    (``tweets_to_upsert``).
    """
    if batch.is_empty():
        return batch
    existing = pl.LazyFrame(schema=TWEETS_SCHEMA)
    if open_table(lake, uri) is not None:
        days = {d + timedelta(days=k) for d in batch.get_column("date").unique().drop_nulls()
                for k in (-1, 0, 1)}
        chains = edit_chains(batch.lazy()).collect().get_column("_chain").to_list()
        table = scan(lake, uri)
        existing = (table.filter(pl.col("date").is_in(sorted(days)))
                    .filter(chain_filter(chains, table.collect_schema().names())))
    rows = tweets_to_upsert(batch.lazy(), existing).collect(engine="in-memory")
    merge_days(lake, uri, rows, ["id"])
    return rows


SILVER_INPUT_COLUMNS = ["spec", "tweets", "included_tweets", "users", "places", "media",
                        "matching_rules", "_source_file", "_ingested_at"]


def _bronze_of(lake: Lake, files: list[str]) -> pl.LazyFrame:
    """Bronze rows of ``files`` (all when empty), without the raw text silver never reads."""
    bronze = scan(lake, lake.table_uri("bronze", "tweets_raw")).select(SILVER_INPUT_COLUMNS)
    return bronze.filter(pl.col("_source_file").is_in(files)) if files else bronze


def _checks(lake: Lake, tweets: pl.DataFrame,
            sentiment: pl.DataFrame) -> list[dg.AssetCheckResult]:
    # Read back from the table as written (a concurrent writer would show here), not the frame.
    written = (scan(lake, lake.table_uri("silver", "tweets"))
               .filter(pl.col("id").is_in(tweets.get_column("id").unique().to_list()))
               .select("id").collect() if open_table(lake, lake.table_uri("silver", "tweets"))
               else tweets.select("id"))
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


@dg.multi_asset(
    specs=[
        dg.AssetSpec(SILVER_TWEETS, group_name=GROUP, kinds={"polars", "delta"},
                     deps=[BRONZE_TWEETS],
                     description="One row per tweet id across search, stream and the tweets "
                                 "they reference (includes.tweets, seen_via_reference): full "
                                 "text (note_tweet), created_at, date (UTC), author, lang, the "
                                 "posting client (source) and how we got it (collected_via), "
                                 "retweet/reply/quote flags and referenced ids, public "
                                 "metrics, place and country, context annotations, media "
                                 "keys, edit links (edit_history_tweet_ids, edit_of, "
                                 "latest_version_id). Delta, partitioned by date."),
        dg.AssetSpec(SILVER_USERS, group_name=GROUP, kinds={"polars", "delta"},
                     deps=[BRONZE_TWEETS],
                     description="One row per user id from includes.users (latest wins): "
                                 "handle, name, protected, url, verified and verified_type, "
                                 "public metrics."),
        dg.AssetSpec(SILVER_HASHTAGS, group_name=GROUP, kinds={"polars", "delta"},
                     deps=[SILVER_TWEETS],
                     description="One row per hashtag of a tweet (tweet_id, position)."),
        dg.AssetSpec(SILVER_MENTIONS, group_name=GROUP, kinds={"polars", "delta"},
                     deps=[SILVER_TWEETS],
                     description="One row per @mention of a tweet (tweet_id, position); "
                                 "user_id from the mention, else from includes.users by "
                                 "handle."),
        dg.AssetSpec(SILVER_URLS, group_name=GROUP, kinds={"polars", "delta"},
                     deps=[SILVER_TWEETS],
                     description="One row per URL of a tweet, with the expanded URL's domain."),
        dg.AssetSpec(SILVER_SENTIMENT, group_name=GROUP, kinds={"polars", "delta"},
                     deps=[SILVER_TWEETS],
                     description="One row per English or Portuguese tweet: clean_text, "
                                 "polarity [-1, 1], subjectivity [0, 1], sentiment_label "
                                 "(Negative/Neutral/Positive), model, created_at, date. "
                                 "A retweet is scored on its original's whole text."),
        dg.AssetSpec(SILVER_MEDIA, group_name=GROUP, kinds={"polars", "delta"},
                     deps=[BRONZE_TWEETS],
                     description="One row per media_key from includes.media (photo, video, "
                                 "animated_gif): type, url or preview, size, duration, alt "
                                 "text, view count. Tweets list theirs in media_keys."),
        dg.AssetSpec(SILVER_MATCHING_RULES, group_name=GROUP, kinds={"polars", "delta"},
                     deps=[BRONZE_TWEETS],
                     description="One row per filtered-stream rule that matched a tweet "
                                 "(tweet_id, rule_id, rule_tag), from matching_rules."),
    ],
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
    bronze = _bronze_of(the_lake, sorted(config.files)).collect().lazy()
    # The in-memory engine runs this explode/unnest plan several times faster than streaming.
    batch = silver_tweets(bronze).collect(engine="in-memory")
    sentiment = tweet_sentiment(sentiment_input(batch.lazy())).collect()
    tweets = upsert_tweets(the_lake, the_lake.table_uri("silver", "tweets"), batch)
    entity_keys = ["tweet_id", "position"]
    frames = {
        SILVER_HASHTAGS: (silver_hashtags(bronze).collect(), entity_keys),
        SILVER_MENTIONS: (silver_mentions(bronze).collect(), entity_keys),
        SILVER_URLS: (silver_urls(bronze).collect(), entity_keys),
        SILVER_SENTIMENT: (sentiment, ["id"]),
        SILVER_MATCHING_RULES: (silver_matching_rules(bronze).collect(), ["tweet_id", "rule_id"]),
    }
    days: list[date] = sorted(set(tweets.get_column("date").drop_nulls().unique()))
    for key, (frame, keys) in frames.items():
        uri = the_lake.table_uri("silver", key.path[-1])
        days = sorted(set(days) | set(merge_days(the_lake, uri, frame, keys)))
    frames = {SILVER_TWEETS: (tweets, ["id"]), **frames}
    unpartitioned = {SILVER_USERS: (silver_users(bronze).collect(), ["id"]),
                     SILVER_MEDIA: (silver_media(bronze).collect(), ["media_key"])}
    for key, (frame, keys) in unpartitioned.items():
        if not frame.is_empty():
            merge_on_keys(the_lake, the_lake.table_uri("silver", key.path[-1]), frame, keys)
    context.log.info(f"{tweets.height} tweets over {len(days)} days, "
                     f"{unpartitioned[SILVER_USERS][0].height} users")
    for key, (frame, _) in frames.items():
        uri = the_lake.table_uri("silver", key.path[-1])
        meta = delta_metadata(the_lake, uri, frame) if open_table(the_lake, uri) else {}
        yield dg.MaterializeResult(asset_key=key, metadata={
            **meta, "rows_this_run": frame.height,
            "days_rewritten": dg.MetadataValue.json([d.isoformat() for d in days])})
    for key, (frame, _) in unpartitioned.items():
        uri = the_lake.table_uri("silver", key.path[-1])
        meta = delta_metadata(the_lake, uri) if open_table(the_lake, uri) else {}
        yield dg.MaterializeResult(asset_key=key, metadata={**meta, "rows_this_run": frame.height})
    yield from _checks(the_lake, tweets, sentiment)
