"""Tweets: raw records -> bronze (+ quarantine) -> silver tweets, users, hashtags, mentions, urls.

Pure Polars. A raw *record* is one recent-search page (a ``.json`` file) or one stream line (a
line of an ``.ndjson`` batch), its JSON text as landed (``RAW_RECORD_SCHEMA``). The caller
decodes the text into ``_envelope`` (``SEARCH_PAGE_DTYPE`` or ``STREAM_LINE_DTYPE`` by spec,
with ``lakehouse.lake.jsondecode``) and normalises it with ``envelope_columns``; everything
after that works on typed columns.

Grains and keys:
- bronze ``tweets_raw``: one row per raw record; key (``_source_file``, ``_record_index``).
- silver ``tweets``: one row per tweet ``id`` across search and stream (the latest landing wins).
- silver ``twitter_users``: one row per user ``id``.
- silver ``tweet_hashtags`` / ``tweet_mentions`` / ``tweet_urls``: one row per (``tweet_id``,
  ``position``), position being the entity's order in the tweet.
"""

from __future__ import annotations

import polars as pl

UTC_US = pl.Datetime("us", "UTC")

PUBLIC_METRICS = pl.Struct({"retweet_count": pl.Int64, "reply_count": pl.Int64,
                            "like_count": pl.Int64, "quote_count": pl.Int64,
                            "bookmark_count": pl.Int64, "impression_count": pl.Int64})
TWEET_DTYPE = pl.Struct({
    "id": pl.String,
    "text": pl.String,
    "created_at": pl.String,
    "author_id": pl.String,
    "conversation_id": pl.String,
    "lang": pl.String,
    "in_reply_to_user_id": pl.String,
    "public_metrics": PUBLIC_METRICS,
    "entities": pl.Struct({
        "hashtags": pl.List(pl.Struct({"start": pl.Int64, "end": pl.Int64, "tag": pl.String})),
        "mentions": pl.List(pl.Struct({"start": pl.Int64, "end": pl.Int64,
                                       "username": pl.String, "id": pl.String})),
        "urls": pl.List(pl.Struct({"start": pl.Int64, "end": pl.Int64, "url": pl.String,
                                   "expanded_url": pl.String, "display_url": pl.String})),
    }),
    "geo": pl.Struct({"place_id": pl.String}),
    "referenced_tweets": pl.List(pl.Struct({"type": pl.String, "id": pl.String})),
})
USER_DTYPE = pl.Struct({
    "id": pl.String, "name": pl.String, "username": pl.String, "created_at": pl.String,
    "location": pl.String, "verified": pl.Boolean, "description": pl.String,
    "public_metrics": pl.Struct({"followers_count": pl.Int64, "following_count": pl.Int64,
                                 "tweet_count": pl.Int64, "listed_count": pl.Int64}),
})
PLACE_DTYPE = pl.Struct({"id": pl.String, "full_name": pl.String, "name": pl.String,
                         "country": pl.String, "country_code": pl.String,
                         "place_type": pl.String})
INCLUDES_DTYPE = pl.Struct({"users": pl.List(USER_DTYPE), "places": pl.List(PLACE_DTYPE)})
ERRORS_DTYPE = pl.List(pl.Struct({"title": pl.String, "detail": pl.String}))
SEARCH_PAGE_DTYPE = pl.Struct({"data": pl.List(TWEET_DTYPE), "includes": INCLUDES_DTYPE,
                               "errors": ERRORS_DTYPE})
STREAM_LINE_DTYPE = pl.Struct({"data": TWEET_DTYPE, "includes": INCLUDES_DTYPE,
                               "errors": ERRORS_DTYPE})

RAW_RECORD_SCHEMA = {
    "_source_file": pl.String,
    "_record_index": pl.Int64,
    "spec": pl.String,  # search | stream
    "record": pl.String,
    "_ingested_at": UTC_US,
}
# What ``envelope_columns`` adds to a decoded record: one shape for pages and stream lines.
ENVELOPE_SCHEMA = {
    "_json_valid": pl.Boolean,
    "tweets": pl.List(TWEET_DTYPE),
    "users": pl.List(USER_DTYPE),
    "places": pl.List(PLACE_DTYPE),
    "errors": ERRORS_DTYPE,
}
BRONZE_SCHEMA = {
    "_source_file": pl.String,
    "_record_index": pl.Int64,
    "spec": pl.String,
    "tweet_count": pl.Int64,
    "newest_id": pl.String,
    "record": pl.String,
    "tweets": pl.List(TWEET_DTYPE),
    "users": pl.List(USER_DTYPE),
    "places": pl.List(PLACE_DTYPE),
    "_ingested_at": UTC_US,
}
QUARANTINE_SCHEMA = {
    "_source_file": pl.String,
    "_record_index": pl.Int64,
    "reason": pl.String,
    "record": pl.String,
    "_ingested_at": UTC_US,
}
TWEETS_SCHEMA = {
    "id": pl.String,
    "text": pl.String,
    "created_at": UTC_US,
    "date": pl.Date,
    "author_id": pl.String,
    "conversation_id": pl.String,
    "lang": pl.String,
    "is_retweet": pl.Boolean,
    "is_reply": pl.Boolean,
    "is_quote": pl.Boolean,
    "retweeted_id": pl.String,
    "replied_to_id": pl.String,
    "quoted_id": pl.String,
    "in_reply_to_user_id": pl.String,
    "retweet_count": pl.Int64,
    "reply_count": pl.Int64,
    "like_count": pl.Int64,
    "quote_count": pl.Int64,
    "impression_count": pl.Int64,
    "place_id": pl.String,
    "place_full_name": pl.String,
    "country": pl.String,
    "country_code": pl.String,
    "source": pl.String,
    "_source_file": pl.String,
    "_ingested_at": UTC_US,
}
USERS_SCHEMA = {
    "id": pl.String,
    "username": pl.String,
    "name": pl.String,
    "created_at": UTC_US,
    "location": pl.String,
    "verified": pl.Boolean,
    "description": pl.String,
    "followers_count": pl.Int64,
    "following_count": pl.Int64,
    "tweet_count": pl.Int64,
    "listed_count": pl.Int64,
    "_ingested_at": UTC_US,
}
_ENTITY_KEY = {"tweet_id": pl.String, "date": pl.Date, "created_at": UTC_US,
               "position": pl.Int64}
HASHTAGS_SCHEMA = {**_ENTITY_KEY, "tag": pl.String, "tag_lower": pl.String,
                   "_ingested_at": UTC_US}
MENTIONS_SCHEMA = {**_ENTITY_KEY, "username": pl.String, "user_id": pl.String,
                   "_ingested_at": UTC_US}
URLS_SCHEMA = {**_ENTITY_KEY, "url": pl.String, "expanded_url": pl.String,
               "display_url": pl.String, "domain": pl.String, "_ingested_at": UTC_US}


def _parse_ts(expr: pl.Expr) -> pl.Expr:
    """v2 timestamps: ``2026-11-16T10:00:00.000Z`` (milliseconds, always UTC)."""
    return expr.str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_unit="us", time_zone="UTC",
                                strict=False)


def envelope_columns(decoded: pl.LazyFrame) -> pl.LazyFrame:
    """Records with ``_envelope`` decoded -> ``ENVELOPE_SCHEMA`` columns, pages and lines alike.

    ``_envelope`` must be a struct with a ``data`` field that is a list of tweets (a page) or one
    tweet (a stream line); each frame holds one of the two shapes.
    """
    schema = decoded.collect_schema()
    data = pl.col("_envelope").struct.field("data")
    is_list = isinstance(schema["_envelope"].to_schema()["data"], pl.List)  # type: ignore[union-attr]
    tweets = data if is_list else pl.when(data.is_not_null()).then(pl.concat_list([data]))
    env = pl.col("_envelope").struct
    return decoded.with_columns(
        tweets.alias("tweets"),
        env.field("includes").struct.field("users").alias("users"),
        env.field("includes").struct.field("places").alias("places"),
        env.field("errors").alias("errors"),
    ).drop("_envelope")


def _valid_tweet(t: pl.Expr) -> pl.Expr:
    return (t.struct.field("id").is_not_null() & t.struct.field("text").is_not_null()
            & _parse_ts(t.struct.field("created_at")).is_not_null())


def _reason() -> pl.Expr:
    """Why a record cannot become bronze, or null when it can."""
    error_titles = pl.col("errors").list.eval(pl.element().struct.field("title")).list.join("; ")
    return (
        pl.when(~pl.col("_json_valid")).then(pl.lit("not valid JSON"))
        .when(pl.col("tweets").is_null() | (pl.col("tweets").list.len() == 0))
        .then(pl.lit("no tweet in the record") + pl.when(error_titles.is_not_null()
              & (error_titles != "")).then(pl.lit(": ") + error_titles).otherwise(pl.lit("")))
        .when(~pl.col("tweets").list.eval(_valid_tweet(pl.element())).list.all())
        .then(pl.lit("tweet without id, text or a v2 created_at"))
    )


def bronze_records(records: pl.LazyFrame) -> pl.LazyFrame:
    """Valid records as ``BRONZE_SCHEMA`` rows. Grain: one raw record (page or stream line)."""
    return (
        records.filter(_reason().is_null())
        .with_columns(
            pl.col("tweets").list.len().cast(pl.Int64).alias("tweet_count"),
            pl.col("tweets").list.eval(pl.element().struct.field("id").cast(pl.Int64)).list.max()
            .cast(pl.String).alias("newest_id"),
        )
        .select(list(BRONZE_SCHEMA))
        .cast(BRONZE_SCHEMA)  # type: ignore[arg-type]
    )


def quarantine_records(records: pl.LazyFrame) -> pl.LazyFrame:
    """Records that cannot become bronze, with the reason and the text as landed."""
    return (
        records.with_columns(_reason().alias("reason"))
        .filter(pl.col("reason").is_not_null())
        .select(list(QUARANTINE_SCHEMA))
        .cast(QUARANTINE_SCHEMA)  # type: ignore[arg-type]
    )


def _referenced(kind: str) -> pl.Expr:
    return (
        pl.col("referenced_tweets")
        .list.eval(pl.element().filter(pl.element().struct.field("type") == kind)
                   .struct.field("id"))
        .list.first()
    )


def latest_per_key(frame: pl.LazyFrame, keys: list[str]) -> pl.LazyFrame:
    """One row per key, the latest landing winning (ties: the later source file)."""
    order = [c for c in ("_ingested_at", "_source_file") if c in frame.collect_schema()]
    return frame.sort(order, nulls_last=False).unique(subset=keys, keep="last",
                                                      maintain_order=True)


def silver_tweets(bronze: pl.LazyFrame) -> pl.LazyFrame:
    """Bronze records -> ``TWEETS_SCHEMA``. Grain: one tweet; key ``id``.

    Search pages and stream lines may carry the same tweet: the latest landing wins. Place names
    and country codes come from the record's ``includes.places`` (present only for geo tweets).
    """
    places = (
        bronze.select(pl.col("places").explode().alias("p"))
        .filter(pl.col("p").is_not_null()).unnest("p")
        .select(pl.col("id").alias("place_id"), pl.col("full_name").alias("place_full_name"),
                "country", "country_code")
        .unique(subset=["place_id"], keep="last")
    )
    tweets = (
        bronze.select("tweets", pl.col("spec").alias("source"), "_source_file", "_ingested_at")
        .explode("tweets").unnest("tweets")
        .with_columns(_parse_ts(pl.col("created_at")).alias("created_at"))
        .with_columns(
            pl.col("created_at").dt.date().alias("date"),
            _referenced("retweeted").alias("retweeted_id"),
            _referenced("replied_to").alias("replied_to_id"),
            _referenced("quoted").alias("quoted_id"),
            pl.col("geo").struct.field("place_id").alias("place_id"),
            *[pl.col("public_metrics").struct.field(m).alias(m)
              for m in ("retweet_count", "reply_count", "like_count", "quote_count",
                        "impression_count")],
        )
        .with_columns(
            pl.col("retweeted_id").is_not_null().alias("is_retweet"),
            pl.col("replied_to_id").is_not_null().alias("is_reply"),
            pl.col("quoted_id").is_not_null().alias("is_quote"),
        )
    )
    return (
        latest_per_key(tweets, ["id"])
        .join(places, on="place_id", how="left")
        .select(list(TWEETS_SCHEMA))
        .cast(TWEETS_SCHEMA)  # type: ignore[arg-type]
    )


def silver_users(bronze: pl.LazyFrame) -> pl.LazyFrame:
    """``includes.users`` of every record -> ``USERS_SCHEMA``. Grain: one user; key ``id``."""
    users = (
        bronze.select(pl.col("users").alias("u"), "_source_file", "_ingested_at")
        .explode("u").filter(pl.col("u").is_not_null()).unnest("u")
        .with_columns(
            _parse_ts(pl.col("created_at")).alias("created_at"),
            *[pl.col("public_metrics").struct.field(m).alias(m)
              for m in ("followers_count", "following_count", "tweet_count", "listed_count")],
        )
    )
    return latest_per_key(users, ["id"]).select(list(USERS_SCHEMA)).cast(USERS_SCHEMA)  # type: ignore[arg-type]


def _entities(bronze: pl.LazyFrame, kind: str) -> pl.LazyFrame:
    """One row per entity of ``kind`` of the latest version of each tweet."""
    return (
        bronze.select("tweets", "_source_file", "_ingested_at").explode("tweets")
        .select(pl.col("tweets").struct.field("id").alias("tweet_id"),
                _parse_ts(pl.col("tweets").struct.field("created_at")).alias("created_at"),
                pl.col("tweets").struct.field("entities").struct.field(kind).alias("e"),
                "_source_file", "_ingested_at")
        .pipe(latest_per_key, ["tweet_id"])
        .with_columns(pl.col("created_at").dt.date().alias("date"))
        .explode("e").filter(pl.col("e").is_not_null())
        .with_columns((pl.col("tweet_id").cum_count().over("tweet_id") - 1).cast(pl.Int64)
                      .alias("position"))
        .unnest("e")
    )


def silver_hashtags(bronze: pl.LazyFrame) -> pl.LazyFrame:
    """Grain: one hashtag occurrence; key (``tweet_id``, ``position``)."""
    return (_entities(bronze, "hashtags")
            .with_columns(pl.col("tag").str.to_lowercase().alias("tag_lower"))
            .select(list(HASHTAGS_SCHEMA)).cast(HASHTAGS_SCHEMA))  # type: ignore[arg-type]


def silver_mentions(bronze: pl.LazyFrame) -> pl.LazyFrame:
    """Grain: one mention; key (``tweet_id``, ``position``)."""
    return (_entities(bronze, "mentions").rename({"id": "user_id"})
            .select(list(MENTIONS_SCHEMA)).cast(MENTIONS_SCHEMA))  # type: ignore[arg-type]


def silver_urls(bronze: pl.LazyFrame) -> pl.LazyFrame:
    """Grain: one URL; key (``tweet_id``, ``position``). ``domain`` is the expanded URL's host."""
    return (_entities(bronze, "urls")
            .with_columns(pl.col("expanded_url").str.extract(r"^[a-zA-Z]+://([^/:?#]+)", 1)
                          .str.to_lowercase().alias("domain"))
            .select(list(URLS_SCHEMA)).cast(URLS_SCHEMA))  # type: ignore[arg-type]
