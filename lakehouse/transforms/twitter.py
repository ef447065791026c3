"""Tweets: raw records -> bronze (+ quarantine) -> silver tweets, users, hashtags, mentions, urls.

Pure Polars. A raw *record* is one recent-search page (a ``.json`` file) or one stream line (a
line of an ``.ndjson`` batch), its JSON text as landed (``RAW_RECORD_SCHEMA``). The caller
decodes the text into ``_envelope`` (``SEARCH_PAGE_DTYPE`` or ``STREAM_LINE_DTYPE`` by spec,
with ``lakehouse.lake.jsondecode``) and normalises it with ``envelope_columns``; everything
after that works on typed columns.

Grains and keys:
- bronze ``twitter_records``: one row per raw record; key (``_source_file``, ``_record_index``).
- silver ``twitter_tweets``: one row per tweet ``id`` across search, stream and ``includes.tweets`` (a
  direct sighting beats a reference, then the latest landing wins); every version of an edited
  post is a row, linked by ``edit_of`` / ``latest_version_id``.
- silver ``twitter_users``: one row per user ``id``; ``twitter_media``: one row per
  ``media_key``; ``twitter_matching_rules``: one row per (``tweet_id``, ``rule_id``).
- quarantine: one row per unusable record, or per unusable tweet of a usable record.
- silver ``twitter_hashtags`` / ``twitter_mentions`` / ``twitter_urls``: one row per (``tweet_id``,
  ``position``), position being the entity's order in the tweet.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

UTC_US = pl.Datetime("us", "UTC")

PUBLIC_METRICS = pl.Struct({"retweet_count": pl.Int64, "reply_count": pl.Int64,
                            "like_count": pl.Int64, "quote_count": pl.Int64,
                            "bookmark_count": pl.Int64, "impression_count": pl.Int64})
ENTITIES_DTYPE = pl.Struct({
    "hashtags": pl.List(pl.Struct({"start": pl.Int64, "end": pl.Int64, "tag": pl.String})),
    "mentions": pl.List(pl.Struct({"start": pl.Int64, "end": pl.Int64,
                                   "username": pl.String, "id": pl.String})),
    "urls": pl.List(pl.Struct({"start": pl.Int64, "end": pl.Int64, "url": pl.String,
                               "expanded_url": pl.String, "display_url": pl.String})),
})
_ANNOTATION_PART = pl.Struct({"id": pl.String, "name": pl.String, "description": pl.String})
CONTEXT_ANNOTATIONS_DTYPE = pl.List(pl.Struct({"domain": _ANNOTATION_PART,
                                               "entity": _ANNOTATION_PART}))
TWEET_DTYPE = pl.Struct({
    "id": pl.String,
    "text": pl.String,
    "created_at": pl.String,
    "author_id": pl.String,
    "conversation_id": pl.String,
    "lang": pl.String,
    "source": pl.String,  # the posting client, e.g. "Twitter for Android"
    "possibly_sensitive": pl.Boolean,
    "in_reply_to_user_id": pl.String,
    "public_metrics": PUBLIC_METRICS,
    "entities": ENTITIES_DTYPE,
    # Posts over 280 characters: ``text`` is cut, the whole post (and its entities) is here.
    "note_tweet": pl.Struct({"text": pl.String, "entities": ENTITIES_DTYPE}),
    "edit_history_tweet_ids": pl.List(pl.String),
    "context_annotations": CONTEXT_ANNOTATIONS_DTYPE,
    "attachments": pl.Struct({"media_keys": pl.List(pl.String),
                              "poll_ids": pl.List(pl.String)}),
    "geo": pl.Struct({"place_id": pl.String}),
    "referenced_tweets": pl.List(pl.Struct({"type": pl.String, "id": pl.String})),
})
USER_DTYPE = pl.Struct({
    "id": pl.String, "name": pl.String, "username": pl.String, "created_at": pl.String,
    "location": pl.String, "verified": pl.Boolean, "verified_type": pl.String,
    "protected": pl.Boolean, "url": pl.String, "description": pl.String,
    "public_metrics": pl.Struct({"followers_count": pl.Int64, "following_count": pl.Int64,
                                 "tweet_count": pl.Int64, "listed_count": pl.Int64,
                                 "like_count": pl.Int64, "media_count": pl.Int64}),
})
PLACE_DTYPE = pl.Struct({"id": pl.String, "full_name": pl.String, "name": pl.String,
                         "country": pl.String, "country_code": pl.String,
                         "place_type": pl.String})
MEDIA_DTYPE = pl.Struct({
    "media_key": pl.String, "type": pl.String, "url": pl.String,
    "preview_image_url": pl.String, "duration_ms": pl.Int64, "height": pl.Int64,
    "width": pl.Int64, "alt_text": pl.String,
    "public_metrics": pl.Struct({"view_count": pl.Int64}),
})
INCLUDES_DTYPE = pl.Struct({"users": pl.List(USER_DTYPE), "places": pl.List(PLACE_DTYPE),
                            "tweets": pl.List(TWEET_DTYPE), "media": pl.List(MEDIA_DTYPE)})
ERRORS_DTYPE = pl.List(pl.Struct({"title": pl.String, "detail": pl.String}))
MATCHING_RULES_DTYPE = pl.List(pl.Struct({"id": pl.String, "tag": pl.String}))
SEARCH_PAGE_DTYPE = pl.Struct({"data": pl.List(TWEET_DTYPE), "includes": INCLUDES_DTYPE,
                               "errors": ERRORS_DTYPE})
STREAM_LINE_DTYPE = pl.Struct({"data": TWEET_DTYPE, "includes": INCLUDES_DTYPE,
                               "errors": ERRORS_DTYPE, "matching_rules": MATCHING_RULES_DTYPE})

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
    "included_tweets": pl.List(TWEET_DTYPE),
    "users": pl.List(USER_DTYPE),
    "places": pl.List(PLACE_DTYPE),
    "media": pl.List(MEDIA_DTYPE),
    "matching_rules": MATCHING_RULES_DTYPE,
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
    "included_tweets": pl.List(TWEET_DTYPE),
    "users": pl.List(USER_DTYPE),
    "places": pl.List(PLACE_DTYPE),
    "media": pl.List(MEDIA_DTYPE),
    "matching_rules": MATCHING_RULES_DTYPE,
    "_ingested_at": UTC_US,
}
QUARANTINE_SCHEMA = {
    "_source_file": pl.String,
    "_record_index": pl.Int64,
    # Where in the record the rejected part is ("$.data[3]", "$.includes.tweets[0]"); null
    # when the whole record is rejected.
    "json_path": pl.String,
    "tweet_id": pl.String,
    "reason": pl.String,
    "record": pl.String,
    "_ingested_at": UTC_US,
}
TWEETS_SCHEMA = {
    "id": pl.String,
    "text": pl.String,
    "has_note_tweet": pl.Boolean,
    "created_at": UTC_US,
    "date": pl.Date,
    "author_id": pl.String,
    "conversation_id": pl.String,
    "lang": pl.String,
    "source": pl.String,
    "possibly_sensitive": pl.Boolean,
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
    "bookmark_count": pl.Int64,
    "impression_count": pl.Int64,
    "place_id": pl.String,
    "place_full_name": pl.String,
    "country": pl.String,
    "country_code": pl.String,
    "edit_history_tweet_ids": pl.List(pl.String),
    "edit_of": pl.String,
    "latest_version_id": pl.String,
    "context_annotations": CONTEXT_ANNOTATIONS_DTYPE,
    "media_keys": pl.List(pl.String),
    "seen_via_reference": pl.Boolean,
    "collected_via": pl.String,
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
    "verified_type": pl.String,
    "protected": pl.Boolean,
    "url": pl.String,
    "description": pl.String,
    "followers_count": pl.Int64,
    "following_count": pl.Int64,
    "tweet_count": pl.Int64,
    "listed_count": pl.Int64,
    "like_count": pl.Int64,
    "media_count": pl.Int64,
    "_ingested_at": UTC_US,
}
MEDIA_SCHEMA = {
    "media_key": pl.String,
    "type": pl.String,
    "url": pl.String,
    "preview_image_url": pl.String,
    "duration_ms": pl.Int64,
    "height": pl.Int64,
    "width": pl.Int64,
    "alt_text": pl.String,
    "view_count": pl.Int64,
    "_ingested_at": UTC_US,
}
MATCHING_RULES_SCHEMA = {"tweet_id": pl.String, "rule_id": pl.String, "rule_tag": pl.String,
                         "date": pl.Date, "created_at": UTC_US, "_ingested_at": UTC_US}
_ENTITY_KEY = {"tweet_id": pl.String, "date": pl.Date, "created_at": UTC_US,
               "position": pl.Int64}
HASHTAGS_SCHEMA = {**_ENTITY_KEY, "tag": pl.String, "tag_lower": pl.String,
                   "_ingested_at": UTC_US}
MENTIONS_SCHEMA = {**_ENTITY_KEY, "username": pl.String, "user_id": pl.String,
                   "_ingested_at": UTC_US}
URLS_SCHEMA = {**_ENTITY_KEY, "url": pl.String, "expanded_url": pl.String,
               "display_url": pl.String, "domain": pl.String, "_ingested_at": UTC_US}
# Tweet ids are positive 64-bit snowflakes that fit int64, written without leading zeros:
# anything else is not a tweet id (and could not be compared or cast as one).
TWEET_ID_PATTERN = r"^[1-9][0-9]{0,18}$"


def _parse_ts(expr: pl.Expr) -> pl.Expr:
    """v2 timestamps: ``2026-11-16T10:00:00.000Z`` (milliseconds, always UTC)."""
    return expr.str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_unit="us", time_zone="UTC",
                                strict=False)


def envelope_columns(decoded: pl.LazyFrame) -> pl.LazyFrame:
    """Records with ``_envelope`` decoded -> ``ENVELOPE_SCHEMA`` columns, pages and lines alike.

    ``_envelope`` must be a struct with a ``data`` field that is a list of tweets (a page) or one
    tweet (a stream line); each frame holds one of the two shapes. Only stream lines carry
    ``matching_rules`` (the filtered stream's rules that matched the line's tweet).
    """
    fields = decoded.collect_schema()["_envelope"].to_schema()  # type: ignore[union-attr]
    data = pl.col("_envelope").struct.field("data")
    is_list = isinstance(fields["data"], pl.List)
    tweets = data if is_list else pl.when(data.is_not_null()).then(pl.concat_list([data]))
    env = pl.col("_envelope").struct
    includes = env.field("includes").struct
    rules = (env.field("matching_rules") if "matching_rules" in fields
             else pl.lit(None, MATCHING_RULES_DTYPE))
    return decoded.with_columns(
        tweets.alias("tweets"),
        includes.field("tweets").alias("included_tweets"),
        includes.field("users").alias("users"),
        includes.field("places").alias("places"),
        includes.field("media").alias("media"),
        rules.alias("matching_rules"),
        env.field("errors").alias("errors"),
    ).drop("_envelope")


def tweet_problem(t: pl.Expr) -> pl.Expr:
    """Why a decoded tweet cannot become a silver row, or null when it can."""
    tweet_id = t.struct.field("id")
    return (
        pl.when(tweet_id.is_null()).then(pl.lit("tweet without id"))
        .when(~tweet_id.str.contains(TWEET_ID_PATTERN)
              | tweet_id.cast(pl.Int64, strict=False).is_null())
        .then(pl.lit("tweet id is not a 1-19 digit integer (no leading zero) that fits int64: ")
              + tweet_id.str.slice(0, 40))
        .when(t.struct.field("text").is_null()).then(pl.lit("tweet without text"))
        .when(_parse_ts(t.struct.field("created_at")).is_null())
        .then(pl.lit("tweet without a v2 created_at"))
    )


def _tweet_ok(t: pl.Expr) -> pl.Expr:
    """``tweet_problem(t).is_null()``, without building the reason strings."""
    tweet_id = t.struct.field("id")
    return (tweet_id.str.contains(TWEET_ID_PATTERN)
            & tweet_id.cast(pl.Int64, strict=False).is_not_null()
            & t.struct.field("text").is_not_null()
            & _parse_ts(t.struct.field("created_at")).is_not_null()).fill_null(False)


def _record_reason() -> pl.Expr:
    """Why a whole record cannot be used (not JSON, no tweet at all), or null."""
    error_titles = pl.col("errors").list.eval(pl.element().struct.field("title")).list.join("; ")
    return (
        pl.when(~pl.col("_json_valid")).then(pl.lit("not valid JSON"))
        .when(pl.col("tweets").is_null() | (pl.col("tweets").list.len() == 0))
        .then(pl.lit("no tweet in the record") + pl.when(error_titles.is_not_null()
              & (error_titles != "")).then(pl.lit(": ") + error_titles).otherwise(pl.lit("")))
    )


def _valid_only(column: str) -> pl.Expr:
    return pl.col(column).list.eval(pl.element().filter(_tweet_ok(pl.element())))


def checked_records(records: pl.LazyFrame) -> pl.LazyFrame:
    """Decoded records plus what ``bronze_records`` and ``quarantine_records`` both ask of
    them, so a caller building both computes it once: ``_reason`` (why the whole record is
    unusable, or null) and whether every tweet of ``tweets`` (``_tweets_ok``) and of
    ``included_tweets`` (``_included_ok``) can be typed."""
    def every_tweet_ok(column: str) -> pl.Expr:
        return pl.col(column).list.eval(_tweet_ok(pl.element())).list.all().fill_null(True)

    return records.with_columns(_record_reason().alias("_reason"),
                                every_tweet_ok("tweets").alias("_tweets_ok"),
                                every_tweet_ok("included_tweets").alias("_included_ok"))


def _checked(records: pl.LazyFrame) -> pl.LazyFrame:
    return records if "_reason" in records.collect_schema() else checked_records(records)


def all_usable(checked: pl.DataFrame) -> bool:
    """Whether every record of ``checked`` (``checked_records``, collected) goes to bronze as
    it is: no record or tweet to quarantine, no tweet list to mend (most batches)."""
    return bool(checked.select((pl.col("_reason").is_null() & pl.col("_tweets_ok")
                                & pl.col("_included_ok")).all()).item())


def bronze_records(records: pl.LazyFrame, usable_as_is: bool = False) -> pl.LazyFrame:
    """Usable records as ``BRONZE_SCHEMA`` rows. Grain: one raw record (page or stream line).

    A tweet that cannot be typed (see ``tweet_problem``) is left out of ``tweets`` /
    ``included_tweets`` and quarantined on its own (``quarantine_records``); the record keeps
    its other tweets, and ``record`` stays the text as landed, whole. A record none of whose
    ``data`` tweets is usable has no bronze row. ``records``: decoded, or ``checked_records``.
    ``usable_as_is``: ``all_usable`` said so of ``records``; the same rows then come without
    the filters and the split (which copied every nested column of a 100k-tweet batch: 0.09 s
    of its 0.13 s of CPU here).
    """
    if usable_as_is:
        # No reason means at least one tweet, and every tweet usable: nothing is left out.
        records_ok = records
    else:
        usable = _checked(records).filter(pl.col("_reason").is_null())
        every_ok = pl.col("_tweets_ok") & pl.col("_included_ok")
        # Only the records holding an unusable tweet have their lists rebuilt.
        mended = usable.filter(~every_ok).with_columns(
            _valid_only("tweets").alias("tweets"),
            _valid_only("included_tweets").alias("included_tweets"))
        records_ok = (pl.concat([usable.filter(every_ok), mended])
                      .filter(pl.col("tweets").list.len() > 0))
    return (
        records_ok
        .with_columns(
            pl.col("tweets").list.len().cast(pl.Int64).alias("tweet_count"),
            pl.col("tweets").list.eval(pl.element().struct.field("id").cast(pl.Int64)).list.max()
            .cast(pl.String).alias("newest_id"),
        )
        .select(list(BRONZE_SCHEMA))
        .cast(BRONZE_SCHEMA)  # type: ignore[arg-type]
    )


def _tweet_rejects(records: pl.LazyFrame, column: str, path: str) -> pl.LazyFrame:
    """One row per unusable tweet of ``column`` in a usable record, with its JSON path."""
    index_path = pl.lit(path) + pl.lit("[") + pl.col("_i").cast(pl.String) + pl.lit("]")
    # A stream line's ``data`` is one tweet, not a list.
    single = (pl.col("spec") == "stream") if column == "tweets" else pl.lit(False)
    return (
        records.select("_source_file", "_record_index", "record", "_ingested_at", "spec",
                       pl.col(column).alias("_t"))
        .with_columns(pl.int_ranges(0, pl.col("_t").list.len()).alias("_i"))
        .explode("_t", "_i")
        .with_columns(tweet_problem(pl.col("_t")).alias("reason"))
        .filter(pl.col("reason").is_not_null())
        .with_columns(
            pl.when(single).then(pl.lit(path)).otherwise(index_path).alias("json_path"),
            pl.col("_t").struct.field("id").alias("tweet_id"),
        )
    )


def quarantine_records(records: pl.LazyFrame) -> pl.LazyFrame:
    """What cannot become bronze, with the reason and the record's text as landed.

    A whole record (not JSON, no tweet) is one row with a null ``json_path``; an unusable
    tweet of an otherwise usable record is one row of its own, ``json_path`` saying which
    (``$.data[3]`` in a page, ``$.data`` in a stream line, ``$.includes.tweets[0]``): one bad
    tweet never sends its page's other tweets to quarantine. ``records``: decoded, or
    ``checked_records``.
    """
    checked = _checked(records)
    whole = (
        checked.filter(pl.col("_reason").is_not_null())
        .with_columns(pl.col("_reason").alias("reason"),
                      pl.lit(None, pl.String).alias("json_path"),
                      pl.lit(None, pl.String).alias("tweet_id"))
    )
    usable = checked.filter(pl.col("_reason").is_null())
    parts = [whole,
             _tweet_rejects(usable.filter(~pl.col("_tweets_ok")), "tweets", "$.data"),
             _tweet_rejects(usable.filter(~pl.col("_included_ok")), "included_tweets",
                            "$.includes.tweets")]
    return pl.concat([p.select(list(QUARANTINE_SCHEMA)).cast(QUARANTINE_SCHEMA)  # type: ignore[arg-type]
                      for p in parts])


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


def latest_tweets(bronze: pl.LazyFrame) -> pl.LazyFrame:
    """One row per tweet id of the batch (``TWEET_DTYPE`` fields unnested), from ``data`` and
    from ``includes.tweets`` alike: a direct sighting beats a reference, then the latest
    landing wins. Adds ``collected_via`` (the record's spec) and ``seen_via_reference``.

    ``silver_tweets`` and the entity tables all start from it: a caller building several of
    them collects it once and passes it as their ``latest`` (``pl.collect_all`` did not share
    it between their plans: each recomputed its explode, sort and unique).
    """
    # ``keep_nulls=False`` here and below: a record without the list gives no row, rather than
    # a null row the filter then drops by copying every other row (half the stream lines have
    # no ``includes.tweets``: 0.09 -> 0.01 s of CPU for a 100k batch's explode).
    def latest(column: str, via_reference: bool) -> pl.LazyFrame:
        return (bronze.select(pl.col(column).alias("t"), pl.col("spec").alias("collected_via"),
                              "_source_file", "_ingested_at")
                .explode("t", keep_nulls=False).filter(pl.col("t").is_not_null())
                .with_columns(pl.col("t").struct.field("id").alias("_id"),
                              pl.lit(via_reference).alias("seen_via_reference"))
                .pipe(latest_per_key, ["_id"]))
    direct = latest("tweets", False)
    return (
        pl.concat([direct, latest("included_tweets", True).join(direct.select("_id"), on="_id",
                                                                 how="anti")])
        .drop("_id")
        .unnest("t")
        .with_columns(_parse_ts(pl.col("created_at")).alias("created_at"))
        .with_columns(pl.col("created_at").dt.date().alias("date"))
    )


def _chain() -> pl.Expr:
    """An edit chain's key: the first version's id (``edit_of``, or the id of an original)."""
    return pl.coalesce("edit_of", "id")


def _latest_versions(tweets: pl.LazyFrame) -> pl.LazyFrame:
    """(``_chain``, ``latest_version_id``) of the edited chains: the newest version id each
    knows of, from the rows present and every id their ``edit_history_tweet_ids`` name (a
    version's history lists the versions before it, and the newer ones once it has been
    edited). A chain missing here was never edited: its latest version is the tweet itself.
    """
    # Only rows whose history names another version say anything about an edit; an original
    # seen before its edit is covered by the edit's own history.
    edited = tweets.filter(pl.col("edit_history_tweet_ids").list.len() > 1)
    rows = edited.select(_chain().alias("_chain"), pl.col("id").alias("v"))
    named = (edited.select(_chain().alias("_chain"), pl.col("edit_history_tweet_ids").alias("v"))
             .explode("v"))
    return (
        pl.concat([rows, named])
        .filter(pl.col("v").str.contains(TWEET_ID_PATTERN))
        .with_columns(pl.col("v").cast(pl.Int64, strict=False).alias("_n"))
        .filter(pl.col("_n").is_not_null())
        .group_by("_chain")
        .agg(pl.col("v").sort_by("_n").last().alias("latest_version_id"))
    )


def silver_tweets(bronze: pl.LazyFrame, latest: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """Bronze records -> ``TWEETS_SCHEMA``. Grain: one tweet; key ``id``.

    Tweets come from ``data`` and from ``includes.tweets`` (the ``referenced_tweets.id``
    expansion: what a retweet, quote or reply points at); the latter are marked
    ``seen_via_reference``. ``text`` is the whole post (``note_tweet.text`` when the post is
    longer than 280 characters). ``source`` is the posting client; ``collected_via`` is how
    we got the tweet (search or stream). Edits: ``edit_of`` is the first version's id (null
    for an original), ``latest_version_id`` the newest version known in the batch
    (``tweets_to_upsert`` extends it to the rows already in silver). Place names and country
    codes come from ``includes.places`` (geo tweets only). ``latest``: ``latest_tweets(bronze)``
    when the caller has it already.
    """
    places = (
        bronze.select(pl.col("places").explode(keep_nulls=False).alias("p"))
        .filter(pl.col("p").is_not_null()).unnest("p")
        .select(pl.col("id").alias("place_id"), pl.col("full_name").alias("place_full_name"),
                "country", "country_code")
        .unique(subset=["place_id"], keep="last")
    )
    history = pl.col("edit_history_tweet_ids")
    tweets = (
        (latest_tweets(bronze) if latest is None else latest)
        .with_columns(
            pl.col("note_tweet").struct.field("text").is_not_null().alias("has_note_tweet"),
            pl.coalesce(pl.col("note_tweet").struct.field("text"), pl.col("text")).alias("text"),
            _referenced("retweeted").alias("retweeted_id"),
            _referenced("replied_to").alias("replied_to_id"),
            _referenced("quoted").alias("quoted_id"),
            pl.col("geo").struct.field("place_id").alias("place_id"),
            pl.col("attachments").struct.field("media_keys").alias("media_keys"),
            pl.when(history.list.first() != pl.col("id")).then(history.list.first())
            .alias("edit_of"),
            *[pl.col("public_metrics").struct.field(m).alias(m)
              for m in ("retweet_count", "reply_count", "like_count", "quote_count",
                        "bookmark_count", "impression_count")],
        )
        .with_columns(
            pl.col("retweeted_id").is_not_null().alias("is_retweet"),
            pl.col("replied_to_id").is_not_null().alias("is_reply"),
            pl.col("quoted_id").is_not_null().alias("is_quote"),
        )
    )
    # A window over the chain, not a join to an aggregate: the plan above runs once.
    newest_named = pl.max_horizontal(
        pl.col("id").cast(pl.Int64, strict=False),
        history.list.eval(pl.element().cast(pl.Int64, strict=False)).list.max())
    return (
        tweets.with_columns(newest_named.max().over(_chain()).cast(pl.String)
                            .alias("latest_version_id"))
        .join(places, on="place_id", how="left")
        .select(list(TWEETS_SCHEMA))
        .cast(TWEETS_SCHEMA)  # type: ignore[arg-type]
    )


def tweets_to_upsert(batch: pl.LazyFrame, existing: pl.LazyFrame) -> pl.LazyFrame:
    """The ``TWEETS_SCHEMA`` rows to upsert for a batch, given the rows already in silver of
    the batch's edit chains (``existing``; any subset of the table holding them).

    - A tweet seen only through a reference never replaces the row of a direct sighting.
    - ``latest_version_id`` is recomputed over the batch and the existing rows together, and
      existing versions whose latest version changed are returned too (an edit arriving
      after its original, or the other way round, links both).
    """
    # A table written before a column existed reads it as null (its rows predate references).
    have = set(existing.collect_schema().names())
    existing = (existing.with_columns([pl.lit(None, dtype).alias(name)
                                       for name, dtype in TWEETS_SCHEMA.items()
                                       if name not in have])
                .select(list(TWEETS_SCHEMA)).cast(TWEETS_SCHEMA))  # type: ignore[arg-type]
    direct_ids = existing.filter(~pl.col("seen_via_reference").fill_null(False)).select("id")
    blocked = batch.filter("seen_via_reference").join(direct_ids, on="id", how="semi")
    upsert = batch.join(blocked.select("id"), on="id", how="anti")
    versions = _latest_versions(pl.concat([
        batch.select("id", "edit_of", "edit_history_tweet_ids"),
        existing.select("id", "edit_of", "edit_history_tweet_ids")]))
    relinked = (
        upsert.with_columns(_chain().alias("_chain")).drop("latest_version_id")
        .join(versions, on="_chain", how="left")
        .with_columns(pl.coalesce("latest_version_id", "id").alias("latest_version_id"))
    )
    changed = (
        existing.join(batch.select("id"), on="id", how="anti")
        .with_columns(_chain().alias("_chain"))
        .join(versions.rename({"latest_version_id": "_latest"}), on="_chain", how="inner")
        .filter(pl.col("_latest") != pl.col("latest_version_id").fill_null(""))
        .with_columns(pl.col("_latest").alias("latest_version_id"))
    )
    return pl.concat([relinked.select(list(TWEETS_SCHEMA)), changed.select(list(TWEETS_SCHEMA))])


def edit_chains(tweets: pl.LazyFrame) -> pl.LazyFrame:
    """The distinct chain keys (``_chain``) of ``tweets``, for looking up existing versions."""
    return tweets.select(_chain().alias("_chain")).unique()


def chain_filter(chains: pl.Series, columns: Iterable[str]) -> pl.Expr:
    """Rows of silver tweets (with ``columns``) that belong to one of ``chains``.

    A version's id is never below its chain's (the first version's): when every chain id has
    19 digits, ``id >= min(chains)`` compares as text as it does as numbers for the rows it
    must keep, and lets the reader skip the files of older tweets by their statistics (a
    batch then reads the rows near its own ids, not the whole of its days).
    """
    exact = (_chain() if "edit_of" in columns else pl.col("id")).is_in(chains)
    if chains.len() and (chains.str.len_chars() == 19).all():
        return (pl.col("id") >= chains.min()) & exact
    return exact


def sentiment_input(tweets: pl.LazyFrame) -> pl.LazyFrame:
    """Tweets as ``tweet_sentiment`` reads them: a retweet's text is its original's whole text
    (the retweet's own is ``RT @user: ...`` cut at 140 characters), when the original is in the
    frame (the ``referenced_tweets.id`` expansion puts it there); else its own text."""
    originals = tweets.select(pl.col("id").alias("retweeted_id"),
                              pl.col("text").alias("_original_text"),
                              pl.col("lang").alias("_original_lang"))
    return (
        tweets.join(originals, on="retweeted_id", how="left")
        .with_columns(pl.coalesce("_original_text", "text").alias("text"),
                      pl.coalesce("_original_lang", "lang").alias("lang"))
        .select("id", "lang", "text", "created_at", "date")
    )


def silver_users(bronze: pl.LazyFrame) -> pl.LazyFrame:
    """``includes.users`` of every record -> ``USERS_SCHEMA``. Grain: one user; key ``id``."""
    users = (
        bronze.select(pl.col("users").alias("u"), "_source_file", "_ingested_at")
        .explode("u", keep_nulls=False).filter(pl.col("u").is_not_null()).unnest("u")
        .with_columns(
            _parse_ts(pl.col("created_at")).alias("created_at"),
            *[pl.col("public_metrics").struct.field(m).alias(m)
              for m in ("followers_count", "following_count", "tweet_count", "listed_count",
                        "like_count", "media_count")],
        )
    )
    return latest_per_key(users, ["id"]).select(list(USERS_SCHEMA)).cast(USERS_SCHEMA)  # type: ignore[arg-type]


def silver_media(bronze: pl.LazyFrame) -> pl.LazyFrame:
    """``includes.media`` -> ``MEDIA_SCHEMA``. Grain: one media item; key ``media_key``
    (tweets name theirs in ``media_keys``)."""
    media = (
        bronze.select(pl.col("media").alias("m"), "_source_file", "_ingested_at")
        .explode("m", keep_nulls=False)
        .filter(pl.col("m").struct.field("media_key").is_not_null()).unnest("m")
        .with_columns(pl.col("public_metrics").struct.field("view_count").alias("view_count"))
    )
    return latest_per_key(media, ["media_key"]).select(list(MEDIA_SCHEMA)).cast(MEDIA_SCHEMA)  # type: ignore[arg-type]


def silver_matching_rules(bronze: pl.LazyFrame) -> pl.LazyFrame:
    """Filtered-stream ``matching_rules`` -> ``MATCHING_RULES_SCHEMA``. Grain: one rule that
    matched a tweet; key (``tweet_id``, ``rule_id``)."""
    tweet = pl.col("tweets").list.first().struct
    return (
        bronze.filter(pl.col("matching_rules").list.len() > 0)
        .select(tweet.field("id").alias("tweet_id"),
                _parse_ts(tweet.field("created_at")).alias("created_at"),
                pl.col("matching_rules").alias("r"), "_source_file", "_ingested_at")
        .explode("r")
        .with_columns(pl.col("r").struct.field("id").alias("rule_id"),
                      pl.col("r").struct.field("tag").alias("rule_tag"),
                      pl.col("created_at").dt.date().alias("date"))
        .filter(pl.col("rule_id").is_not_null())
        .pipe(latest_per_key, ["tweet_id", "rule_id"])
        .select(list(MATCHING_RULES_SCHEMA))
        .cast(MATCHING_RULES_SCHEMA)  # type: ignore[arg-type]
    )


def _entities(bronze: pl.LazyFrame, kind: str, latest: pl.LazyFrame | None) -> pl.LazyFrame:
    """One row per entity of ``kind`` of each tweet of the batch (as ``latest_tweets`` picks
    it), from ``note_tweet.entities`` when the post is long (they index its whole text).
    ``latest``: ``latest_tweets(bronze)`` when the caller has it already."""
    entities = (pl.when(pl.col("note_tweet").struct.field("text").is_not_null())
                .then(pl.col("note_tweet").struct.field("entities"))
                .otherwise(pl.col("entities")))
    return (
        (latest_tweets(bronze) if latest is None else latest)
        .select(pl.col("id").alias("tweet_id"), "created_at", "date",
                entities.struct.field(kind).alias("e"), "_ingested_at")
        .explode("e", keep_nulls=False).filter(pl.col("e").is_not_null())
        .with_columns((pl.col("tweet_id").cum_count().over("tweet_id") - 1).cast(pl.Int64)
                      .alias("position"))
        .unnest("e")
    )


def silver_hashtags(bronze: pl.LazyFrame, latest: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """Grain: one hashtag occurrence; key (``tweet_id``, ``position``)."""
    return (_entities(bronze, "hashtags", latest)
            .with_columns(pl.col("tag").str.to_lowercase().alias("tag_lower"))
            .select(list(HASHTAGS_SCHEMA)).cast(HASHTAGS_SCHEMA))  # type: ignore[arg-type]


def silver_mentions(bronze: pl.LazyFrame, latest: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """Grain: one mention; key (``tweet_id``, ``position``). A mention without an ``id`` gets
    the id of the user of that @handle in the batch's ``includes.users`` (handles are
    case-insensitive)."""
    by_handle = (
        silver_users(bronze).select(pl.col("username").str.to_lowercase().alias("_handle"),
                                    pl.col("id").alias("_resolved"))
        .filter(pl.col("_handle").is_not_null())
        .unique(subset=["_handle"], keep="last")
    )
    return (_entities(bronze, "mentions", latest)
            .with_columns(pl.col("username").str.to_lowercase().alias("_handle"))
            .join(by_handle, on="_handle", how="left", maintain_order="left")
            .with_columns(pl.coalesce("id", "_resolved").alias("user_id"))
            .select(list(MENTIONS_SCHEMA)).cast(MENTIONS_SCHEMA))  # type: ignore[arg-type]


def silver_urls(bronze: pl.LazyFrame, latest: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """Grain: one URL; key (``tweet_id``, ``position``). ``domain`` is the expanded URL's host."""
    return (_entities(bronze, "urls", latest)
            .with_columns(pl.col("expanded_url").str.extract(r"^[a-zA-Z]+://([^/:?#]+)", 1)
                          .str.to_lowercase().alias("domain"))
            .select(list(URLS_SCHEMA)).cast(URLS_SCHEMA))  # type: ignore[arg-type]
