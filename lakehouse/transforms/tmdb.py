"""TMDB envelopes (raw JSON files of ``{request, status, fetched_at, response}``) to silver.

Raw files are read with the explicit schemas below (``pl.read_json(..., schema=...)``): the
fields we use, typed; anything else TMDB adds is ignored. Every table keeps the newest answer
per id, so re-fetching a title replaces it.
"""

from __future__ import annotations

import polars as pl

_NAMED = pl.Struct({"id": pl.Int64, "name": pl.String})
_CAST = pl.Struct({"id": pl.Int64, "name": pl.String, "character": pl.String,
                   "order": pl.Int64, "credit_id": pl.String,
                   "known_for_department": pl.String})
_CREW = pl.Struct({"id": pl.Int64, "name": pl.String, "job": pl.String,
                   "department": pl.String, "credit_id": pl.String})
_CREDITS = pl.Struct({"cast": pl.List(_CAST), "crew": pl.List(_CREW)})
_REQUEST = pl.Struct({"endpoint": pl.String, "path": pl.String, "key": pl.String})

MOVIE_RESPONSE = pl.Struct({
    "id": pl.Int64, "imdb_id": pl.String, "title": pl.String, "original_title": pl.String,
    "original_language": pl.String, "release_date": pl.String, "runtime": pl.Int64,
    "budget": pl.Int64, "revenue": pl.Int64, "vote_average": pl.Float64,
    "vote_count": pl.Int64, "popularity": pl.Float64, "status": pl.String,
    "genres": pl.List(_NAMED), "keywords": pl.Struct({"keywords": pl.List(_NAMED)}),
    "credits": _CREDITS,
})
TV_RESPONSE = pl.Struct({
    "id": pl.Int64, "name": pl.String, "original_name": pl.String,
    "original_language": pl.String, "first_air_date": pl.String, "last_air_date": pl.String,
    "number_of_seasons": pl.Int64, "number_of_episodes": pl.Int64, "status": pl.String,
    "vote_average": pl.Float64, "vote_count": pl.Int64, "popularity": pl.Float64,
    "genres": pl.List(_NAMED), "credits": _CREDITS,
    "external_ids": pl.Struct({"imdb_id": pl.String}),
})
FIND_RESPONSE = pl.Struct({"movie_results": pl.List(pl.Struct({"id": pl.Int64})),
                           "tv_results": pl.List(pl.Struct({"id": pl.Int64}))})
DISCOVER_RESPONSE = pl.Struct({"page": pl.Int64, "total_pages": pl.Int64,
                               "results": pl.List(pl.Struct({"id": pl.Int64}))})


_IDS = pl.List(pl.Struct({"id": pl.Int64}))
# What the request log keeps of any answer: the ids a /find or /discover answer points to.
REQUEST_LOG_RESPONSE = pl.Struct({"movie_results": _IDS, "tv_results": _IDS, "results": _IDS})


def envelope_schema(response: pl.DataType | None) -> dict[str, pl.DataType]:
    """The raw record of one endpoint; ``None``: the response is left out (not_found files)."""
    schema: dict[str, pl.DataType] = {"request": _REQUEST, "status": pl.Int64,
                                      "fetched_at": pl.String}
    if response is not None:
        schema["response"] = response
    return schema


TMDB_MOVIES_SCHEMA = {
    "tmdb_id": pl.Int64, "imdb_id": pl.String, "title": pl.String, "original_title": pl.String,
    "original_language": pl.String, "release_date": pl.Date, "release_year": pl.Int32,
    "runtime_minutes": pl.Int32, "budget": pl.Int64, "revenue": pl.Int64, "roi": pl.Float64,
    "vote_average": pl.Float64, "vote_count": pl.Int64, "popularity": pl.Float64,
    "status": pl.String, "genres": pl.List(pl.String), "genre_ids": pl.List(pl.Int64),
    "keywords": pl.List(pl.String), "fetched_at": pl.Datetime("us", "UTC"),
}
TMDB_TV_SCHEMA = {
    "tmdb_id": pl.Int64, "imdb_id": pl.String, "name": pl.String, "original_name": pl.String,
    "original_language": pl.String, "first_air_date": pl.Date, "last_air_date": pl.Date,
    "first_air_year": pl.Int32, "number_of_seasons": pl.Int32, "number_of_episodes": pl.Int32,
    "status": pl.String, "vote_average": pl.Float64, "vote_count": pl.Int64,
    "popularity": pl.Float64, "genres": pl.List(pl.String), "fetched_at": pl.Datetime("us", "UTC"),
}
TMDB_CREDITS_SCHEMA = {
    "media_type": pl.String, "tmdb_id": pl.Int64, "credit_id": pl.String,
    "credit_type": pl.String, "person_id": pl.Int64, "name": pl.String, "character": pl.String,
    "job": pl.String, "department": pl.String, "cast_order": pl.Int32,
}
TMDB_REQUESTS_SCHEMA = {"endpoint": pl.String, "key": pl.String, "status": pl.Int64,
                        "fetched_at": pl.Datetime("us", "UTC")}
TMDB_REQUEST_LOG_SCHEMA = {
    **TMDB_REQUESTS_SCHEMA, "movie_ids": pl.List(pl.Int64), "tv_ids": pl.List(pl.Int64),
    "_source_file": pl.String, "_record_index": pl.Int64, "_ingested_at": pl.Datetime("us", "UTC"),
}


def _fetched_at() -> pl.Expr:
    return pl.col("fetched_at").str.to_datetime(time_zone="UTC", time_unit="us")


def _date(field: str) -> pl.Expr:
    # TMDB sends "" for an unknown date.
    return pl.col(field).replace("", None).str.to_date("%Y-%m-%d", strict=False)


def _newest(lf: pl.LazyFrame, key: list[str]) -> pl.LazyFrame:
    # A stable sort: of two answers fetched in the same second, the later landed one wins.
    return lf.sort("fetched_at", maintain_order=True).unique(subset=key, keep="last",
                                                             maintain_order=True)



def _zero_is_null(field: str) -> pl.Expr:
    # TMDB uses 0 for "unknown" budget and revenue.
    return pl.when(pl.col(field) > 0).then(pl.col(field)).otherwise(None)


def tmdb_movies(envelopes: pl.LazyFrame) -> pl.LazyFrame:
    """/movie/{id} answers -> ``tmdb_movies``: one row per ``tmdb_id``, the newest answer; 0
    budget/revenue as null, ROI = (revenue - budget) / budget, genres and keywords as lists."""
    return (
        envelopes.filter(pl.col("status") == 200)
        .select(_fetched_at().alias("fetched_at"), pl.col("response").struct.unnest())
        .pipe(_newest, ["id"])
        .select(
            pl.col("id").alias("tmdb_id"),
            pl.col("imdb_id").replace("", None),
            "title", "original_title", "original_language",
            _date("release_date").alias("release_date"),
            _date("release_date").dt.year().cast(pl.Int32).alias("release_year"),
            pl.col("runtime").replace(0, None).cast(pl.Int32).alias("runtime_minutes"),
            _zero_is_null("budget").alias("budget"),
            _zero_is_null("revenue").alias("revenue"),
            ((_zero_is_null("revenue") - _zero_is_null("budget")) / _zero_is_null("budget"))
            .alias("roi"),
            "vote_average", "vote_count", "popularity", "status",
            pl.col("genres").list.eval(pl.element().struct.field("name"))
            .fill_null(pl.lit([], pl.List(pl.String))).alias("genres"),
            pl.col("genres").list.eval(pl.element().struct.field("id"))
            .fill_null(pl.lit([], pl.List(pl.Int64))).alias("genre_ids"),
            pl.col("keywords").struct.field("keywords")
            .list.eval(pl.element().struct.field("name"))
            .fill_null(pl.lit([], pl.List(pl.String))).alias("keywords"),
            "fetched_at",
        )
    )


def tmdb_tv(envelopes: pl.LazyFrame) -> pl.LazyFrame:
    """/tv/{id} answers -> ``tmdb_tv``: one row per ``tmdb_id``, the newest answer; the IMDB id
    from ``external_ids``."""
    return (
        envelopes.filter(pl.col("status") == 200)
        .select(_fetched_at().alias("fetched_at"), pl.col("response").struct.unnest())
        .pipe(_newest, ["id"])
        .select(
            pl.col("id").alias("tmdb_id"),
            pl.col("external_ids").struct.field("imdb_id").replace("", None).alias("imdb_id"),
            "name", "original_name", "original_language",
            _date("first_air_date").alias("first_air_date"),
            _date("last_air_date").alias("last_air_date"),
            _date("first_air_date").dt.year().cast(pl.Int32).alias("first_air_year"),
            pl.col("number_of_seasons").cast(pl.Int32),
            pl.col("number_of_episodes").cast(pl.Int32),
            "status", "vote_average", "vote_count", "popularity",
            pl.col("genres").list.eval(pl.element().struct.field("name"))
            .fill_null(pl.lit([], pl.List(pl.String))).alias("genres"),
            "fetched_at",
        )
    )


def _credits(envelopes: pl.LazyFrame, media_type: str) -> pl.LazyFrame:
    details = (
        envelopes.filter(pl.col("status") == 200)
        .select(_fetched_at().alias("fetched_at"), pl.col("response").struct.field("id"),
                pl.col("response").struct.field("credits"))
        .pipe(_newest, ["id"])
    )
    cast = (details.select(pl.col("id").alias("tmdb_id"),
                           pl.col("credits").struct.field("cast").alias("c"))
            .explode("c").drop_nulls("c")
            .select("tmdb_id", pl.col("c").struct.field("credit_id"),
                    pl.lit("cast").alias("credit_type"),
                    pl.col("c").struct.field("id").alias("person_id"),
                    pl.col("c").struct.field("name"), pl.col("c").struct.field("character"),
                    pl.lit(None, pl.String).alias("job"),
                    pl.col("c").struct.field("known_for_department").alias("department"),
                    pl.col("c").struct.field("order").cast(pl.Int32).alias("cast_order")))
    crew = (details.select(pl.col("id").alias("tmdb_id"),
                           pl.col("credits").struct.field("crew").alias("c"))
            .explode("c").drop_nulls("c")
            .select("tmdb_id", pl.col("c").struct.field("credit_id"),
                    pl.lit("crew").alias("credit_type"),
                    pl.col("c").struct.field("id").alias("person_id"),
                    pl.col("c").struct.field("name"),
                    pl.lit(None, pl.String).alias("character"),
                    pl.col("c").struct.field("job"), pl.col("c").struct.field("department"),
                    pl.lit(None, pl.Int32).alias("cast_order")))
    return pl.concat([cast, crew]).select(pl.lit(media_type).alias("media_type"), pl.all())


def tmdb_credits(movie_envelopes: pl.LazyFrame, tv_envelopes: pl.LazyFrame) -> pl.LazyFrame:
    """Cast and crew of the newest /movie and /tv answers -> ``tmdb_credits``: one row per
    (media_type, tmdb_id, credit_id)."""
    return (pl.concat([_credits(movie_envelopes, "movie"), _credits(tv_envelopes, "tv")])
            .unique(subset=["media_type", "tmdb_id", "credit_id"], keep="first"))


def tmdb_request_log(envelopes: pl.LazyFrame) -> pl.LazyFrame:
    """Raw TMDB records (read with ``envelope_schema(REQUEST_LOG_RESPONSE)``, plus
    ``_source_file``, ``_record_index``, ``_ingested_at``) -> ``bronze/tmdb_requests``: one row
    per raw record with what was asked, the status, and the TMDB ids a /find (movie_results,
    tv_results) or /discover (results) answer points to; other answers carry empty lists."""
    def ids(field: str) -> pl.Expr:
        return (pl.col("response").struct.field(field).list.eval(pl.element().struct.field("id"))
                .fill_null(pl.lit([], pl.List(pl.Int64))))

    endpoint = pl.col("request").struct.field("endpoint")
    ok = pl.col("status") == 200
    empty = pl.lit([], pl.List(pl.Int64))
    return envelopes.select(
        endpoint.alias("endpoint"),
        pl.col("request").struct.field("key").alias("key"),
        "status",
        _fetched_at().alias("fetched_at"),
        pl.when(ok & (endpoint == "find")).then(ids("movie_results"))
        .when(ok & (endpoint == "discover")).then(ids("results"))
        .otherwise(empty).alias("movie_ids"),
        pl.when(ok & (endpoint == "find")).then(ids("tv_results")).otherwise(empty)
        .alias("tv_ids"),
        "_source_file", "_record_index", "_ingested_at",
    )


def tmdb_requests(request_log: pl.LazyFrame) -> pl.LazyFrame:
    """``bronze/tmdb_requests`` -> ``tmdb_requests``: one row per (endpoint, key), the newest
    status (404: TMDB does not know the id)."""
    return request_log.select(list(TMDB_REQUESTS_SCHEMA)).pipe(_newest, ["endpoint", "key"])
