"""MovieLens CSVs (ratings, movies, tags, links) to silver: pure Polars, lazy, streamable.

MovieLens files are RFC 4180 CSV (titles with commas are quoted). Raw frames are read with
every column as text (``MOVIELENS_CSV_OPTIONS``); checks send bad rows to quarantine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from lakehouse.transforms.imdb import Check, bad_float, bad_int, good_rows

MOVIELENS_CSV_OPTIONS = {"infer_schema": False, "low_memory": False}

NO_GENRES = "(no genres listed)"
# "Matrix, The (1999)": the year in trailing parentheses (a range "(2007-2013)" keeps its
# start), and the article moved back to the front.
TITLE_YEAR = r"^(.*?)\s*\((\d{4})(?:\s*[-–]\s*\d{0,4})?\)\s*$"
TRAILING_ARTICLE = r"^(.*), (The|A|An|Les|La|Le|L'|Il|El|Los|Las|Das|Der|Die|Det|De|O|Os)$"

MOVIELENS_MOVIES_SCHEMA = {
    "movie_id": pl.Int32, "title": pl.String, "year": pl.Int32, "genres": pl.List(pl.String),
    "raw_title": pl.String,
}
MOVIELENS_RATINGS_SCHEMA = {"user_id": pl.Int32, "movie_id": pl.Int32, "rating": pl.Float32,
                            "rated_at": pl.Datetime("us", "UTC")}
MOVIELENS_TAGS_SCHEMA = {"user_id": pl.Int32, "movie_id": pl.Int32, "tag": pl.String,
                         "tag_raw": pl.String, "tagged_at": pl.Datetime("us", "UTC")}
MOVIELENS_TAG_COUNTS_SCHEMA = {"movie_id": pl.Int32, "tag": pl.String, "n_applications": pl.Int64,
                               "n_users": pl.Int64, "first_tagged_at": pl.Datetime("us", "UTC"),
                               "last_tagged_at": pl.Datetime("us", "UTC")}
MOVIELENS_LINKS_SCHEMA = {"movie_id": pl.Int32, "imdb_id": pl.String, "tmdb_id": pl.Int64}


def _epoch(column: str) -> pl.Expr:
    return (pl.from_epoch(pl.col(column).cast(pl.Int64, strict=False), time_unit="s")
            .dt.replace_time_zone("UTC"))


def _id(column: str) -> pl.Expr:
    return pl.col(column).is_null() | bad_int(column, pl.Int32)


MOVIES_CHECKS: list[Check] = [("movieId is not an integer", _id("movieId")),
                              ("title is empty", pl.col("title").is_null())]


def movielens_movies(raw: pl.LazyFrame) -> pl.LazyFrame:
    """movies.csv -> ``movielens_movies``: one row per ``movie_id``; title and year apart, the
    article back in front, genres as a list ("(no genres listed)" is an empty list)."""
    bare = pl.col("title").str.strip_chars()
    name = bare.str.replace(TITLE_YEAR, "$1")
    return (
        good_rows(raw, MOVIES_CHECKS)
        .select(
            pl.col("movieId").cast(pl.Int32).alias("movie_id"),
            pl.when(name.str.contains(TRAILING_ARTICLE))
            .then(name.str.replace(TRAILING_ARTICLE, "$2 $1"))
            .otherwise(name).alias("title"),
            bare.str.extract(TITLE_YEAR, 2).cast(pl.Int32, strict=False).alias("year"),
            pl.when(pl.col("genres").is_null() | (pl.col("genres") == NO_GENRES))
            .then(pl.lit([], pl.List(pl.String)))
            .otherwise(pl.col("genres").str.split("|")).alias("genres"),
            pl.col("title").alias("raw_title"),
        )
        .unique(subset=["movie_id"], keep="any")
    )


RATINGS_CHECKS: list[Check] = [
    ("userId is not an integer", _id("userId")),
    ("movieId is not an integer", _id("movieId")),
    ("rating is not a number", pl.col("rating").is_null() | bad_float("rating")),
    ("rating outside 0.5..5", ~pl.col("rating").cast(pl.Float32, strict=False).is_between(0.5, 5.0)),
    ("timestamp is not epoch seconds", pl.col("timestamp").is_null() | bad_int("timestamp")),
]


RATINGS_KEY = ("user_id", "movie_id")


RATINGS_COLUMNS: list[pl.Expr] = [
    pl.col("userId").cast(pl.Int32, strict=False).alias("user_id"),
    pl.col("movieId").cast(pl.Int32, strict=False).alias("movie_id"),
    pl.col("rating").cast(pl.Float32, strict=False).alias("rating"),
    _epoch("timestamp").alias("rated_at"),
]


def typed_ratings(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Valid ratings.csv rows -> the typed columns of ``movielens_ratings`` (no dedup)."""
    return rows.select(RATINGS_COLUMNS)


def latest_rating(ratings: pl.LazyFrame) -> pl.LazyFrame:
    """One row per (user_id, movie_id): a re-rating keeps the newest."""
    return (ratings.sort("rated_at", maintain_order=True)
            .unique(subset=list(RATINGS_KEY), keep="last", maintain_order=False))


def movielens_ratings(raw: pl.LazyFrame) -> pl.LazyFrame:
    """ratings.csv -> ``movielens_ratings``: one row per (user_id, movie_id), the latest rating
    winning; ``rated_at`` a UTC timestamp."""
    return good_rows(raw, RATINGS_CHECKS).pipe(typed_ratings).pipe(latest_rating)


TAGS_CHECKS: list[Check] = [
    ("userId is not an integer", _id("userId")),
    ("movieId is not an integer", _id("movieId")),
    ("tag is empty", pl.col("tag").is_null() | (pl.col("tag").str.strip_chars() == "")),
    ("timestamp is not epoch seconds", pl.col("timestamp").is_null() | bad_int("timestamp")),
]


def normalise_tag(expr: pl.Expr) -> pl.Expr:
    """Lower case, trimmed, inner whitespace collapsed: "Great  Soundtrack " -> "great soundtrack"."""
    return expr.str.strip_chars().str.replace_all(r"\s+", " ").str.to_lowercase()


TAGS_KEY = ("user_id", "movie_id", "tag")


TAGS_COLUMNS: list[pl.Expr] = [
    pl.col("userId").cast(pl.Int32, strict=False).alias("user_id"),
    pl.col("movieId").cast(pl.Int32, strict=False).alias("movie_id"),
    normalise_tag(pl.col("tag")).alias("tag"),
    pl.col("tag").alias("tag_raw"),
    _epoch("timestamp").alias("tagged_at"),
]


def _typed_tags(raw: pl.LazyFrame) -> pl.LazyFrame:
    """Valid tags.csv rows, typed and normalised: one row per application (no dedup)."""
    return good_rows(raw, TAGS_CHECKS).select(TAGS_COLUMNS)


def tags_per_user(typed: pl.LazyFrame) -> pl.LazyFrame:
    """Typed tag applications -> one row per (user_id, movie_id, tag), the earliest winning.

    Every group lies within one (movie_id, tag), so this may run on any part of the rows that
    holds whole (movie_id, tag) groups (the load's hash partitions)."""
    return typed.group_by(list(TAGS_KEY)).agg(
        pl.col("tag_raw").sort_by("tagged_at").first(), pl.col("tagged_at").min())


def tag_counts(typed: pl.LazyFrame) -> pl.LazyFrame:
    """Typed tag applications -> one row per (movie_id, tag) (see ``movielens_tag_counts``)."""
    return typed.group_by(["movie_id", "tag"]).agg(
        pl.len().cast(pl.Int64).alias("n_applications"),
        pl.col("user_id").n_unique().cast(pl.Int64).alias("n_users"),
        pl.col("tagged_at").min().alias("first_tagged_at"),
        pl.col("tagged_at").max().alias("last_tagged_at"),
    )


def movielens_tags(raw: pl.LazyFrame) -> pl.LazyFrame:
    """tags.csv -> ``movielens_tags``: one row per (user_id, movie_id, tag), the tag normalised
    (``tag_raw`` keeps the user's spelling, the earliest application wins)."""
    return _typed_tags(raw).pipe(tags_per_user)


def movielens_tag_counts(raw: pl.LazyFrame) -> pl.LazyFrame:
    """tags.csv -> ``movielens_tag_counts``: one row per (movie_id, tag).

    MovieLens calls each tags.csv row an application, so ``n_applications`` counts the valid
    raw rows (a user tagging a film twice is two applications), not the per-user rows of
    ``movielens_tags``; ``n_users`` counts distinct users.
    """
    return _typed_tags(raw).pipe(tag_counts)


LINKS_CHECKS: list[Check] = [
    ("movieId is not an integer", _id("movieId")),
    ("imdbId is not digits", pl.col("imdbId").is_null()
     | ~pl.col("imdbId").str.strip_chars().str.contains(r"^(tt)?\d+$")),
    ("tmdbId is not an integer", bad_int("tmdbId")),
]


def imdb_id_from_digits(expr: pl.Expr) -> pl.Expr:
    """``114709`` or ``0114709`` -> ``tt0114709``: IMDB pads to at least 7 digits."""
    digits = expr.str.strip_chars().str.strip_prefix("tt").cast(pl.Int64).cast(pl.String)
    return pl.lit("tt") + digits.str.zfill(7)


def movielens_links(raw: pl.LazyFrame) -> pl.LazyFrame:
    """links.csv -> ``movielens_links``: one row per ``movie_id``; IMDB ids as ``tt`` + padded
    digits so they join ``imdb_titles.tconst``; an empty tmdbId is null."""
    return (
        good_rows(raw, LINKS_CHECKS)
        .select(
            pl.col("movieId").cast(pl.Int32).alias("movie_id"),
            imdb_id_from_digits(pl.col("imdbId")).alias("imdb_id"),
            pl.col("tmdbId").cast(pl.Int64, strict=False).alias("tmdb_id"),
        )
        .unique(subset=["movie_id"], keep="any")
    )


@dataclass(frozen=True)
class MovieLensTable:
    member: str  # file name inside the zip's folder
    table: str
    transform: Callable[[pl.LazyFrame], pl.LazyFrame]
    checks: list[Check]
    schema: dict[str, pl.DataType]


MOVIELENS_TABLES: tuple[MovieLensTable, ...] = (
    MovieLensTable("movies.csv", "movielens_movies", movielens_movies, MOVIES_CHECKS,
                   MOVIELENS_MOVIES_SCHEMA),
    MovieLensTable("ratings.csv", "movielens_ratings", movielens_ratings, RATINGS_CHECKS,
                   MOVIELENS_RATINGS_SCHEMA),
    MovieLensTable("tags.csv", "movielens_tags", movielens_tags, TAGS_CHECKS,
                   MOVIELENS_TAGS_SCHEMA),
    MovieLensTable("links.csv", "movielens_links", movielens_links, LINKS_CHECKS,
                   MOVIELENS_LINKS_SCHEMA),
)
