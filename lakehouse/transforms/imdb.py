"""IMDB datasets (TSV, ``\\N`` for null, no quoting) to silver: pure Polars, lazy, streamable.

Every raw dataset is read with every column as text (``IMDB_CSV_OPTIONS``), so a bad value
never fails the whole file: each table has checks, the first failing check is the row's reason,
failing rows go to quarantine (``quarantine_rows``) and the rest are typed, renamed and
deduplicated on the table's natural key.

The quarantine helpers here are shared by the MovieLens and CSV drop transforms.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl

# How every IMDB TSV must be read: tab-separated, `\N` is null, a `"` is data (titles contain
# unbalanced quotes), every column as text so checks decide what is bad, not the reader.
IMDB_CSV_OPTIONS = {
    "separator": "\t",
    "quote_char": None,
    "null_values": "\\N",
    "infer_schema": False,
    "truncate_ragged_lines": True,
    "low_memory": False,
    "empty_string_is_null": False,
}
# IMDB separates the items of its "array" columns with commas, akas types/attributes with \x02.
ARRAY_SEPARATOR = ","
AKA_ARRAY_SEPARATOR = "\x02"

QUARANTINE_SCHEMA = {
    "_source_file": pl.String,
    "record_index": pl.Int64,
    "source": pl.String,
    "table": pl.String,
    "reason": pl.String,
    "raw_record": pl.String,
}

Check = tuple[str, pl.Expr]  # (reason, expression that is True when the row is bad)


def bad_int(column: str, dtype: pl.DataType = pl.Int64) -> pl.Expr:
    """True when the column has a value that is not an integer of ``dtype``."""
    return pl.col(column).is_not_null() & pl.col(column).cast(dtype, strict=False).is_null()


def bad_float(column: str) -> pl.Expr:
    return pl.col(column).is_not_null() & pl.col(column).cast(pl.Float64, strict=False).is_null()


def failure_reason(checks: Sequence[Check]) -> pl.Expr:
    """The reason of the first failing check, null for a good row."""
    expr: pl.Expr | pl.When | pl.Then = pl
    for reason, is_bad in checks:
        expr = expr.when(is_bad).then(pl.lit(reason))  # type: ignore[union-attr]
    return expr.otherwise(pl.lit(None, pl.String)).alias("_reason")  # type: ignore[union-attr]


def good_rows(raw: pl.LazyFrame, checks: Sequence[Check]) -> pl.LazyFrame:
    if not checks:
        return raw
    return raw.filter(failure_reason(checks).is_null())


def quarantine_rows(raw: pl.LazyFrame, checks: Sequence[Check], *, source_file: str,
                    source: str, table: str, index_column: str = "_index",
                    separator: str = "\t", null_text: str = "\\N") -> pl.LazyFrame:
    """Bad rows of ``raw`` (which carries a row index) in the quarantine schema.

    The record is rebuilt as text with the file's own separator and null marker, so an
    operator sees the line as it was.
    """
    columns = [c for c in raw.collect_schema().names() if c != index_column]
    return (
        raw.with_columns(failure_reason(checks))
        .filter(pl.col("_reason").is_not_null())
        .select(
            pl.lit(source_file).alias("_source_file"),
            pl.col(index_column).cast(pl.Int64).alias("record_index"),
            pl.lit(source).alias("source"),
            pl.lit(table).alias("table"),
            pl.col("_reason").alias("reason"),
            pl.concat_str([pl.col(c).fill_null(null_text) for c in columns],
                          separator=separator).alias("raw_record"),
        )
    )


def _list(column: str, separator: str = ARRAY_SEPARATOR) -> pl.Expr:
    return pl.col(column).str.split(separator)


def _year(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.Int32, strict=False)


def _flag(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.Int8, strict=False).cast(pl.Boolean)


_EMPTY_LIST = pl.lit([], pl.List(pl.String))
TCONST = r"^tt\d{7,}$"
NCONST = r"^nm\d{7,}$"


def _bad_id(column: str, pattern: str) -> pl.Expr:
    return pl.col(column).is_null() | ~pl.col(column).str.contains(pattern)


# -- silver schemas (shared by tests, readers and writers) ------------------------------------

IMDB_TITLES_SCHEMA = {
    "tconst": pl.String, "title_type": pl.String, "primary_title": pl.String,
    "original_title": pl.String, "is_adult": pl.Boolean, "start_year": pl.Int32,
    "end_year": pl.Int32, "runtime_minutes": pl.Int32, "genres": pl.List(pl.String),
    "decade": pl.Int32,
}
IMDB_RATINGS_SCHEMA = {"tconst": pl.String, "average_rating": pl.Float64, "num_votes": pl.Int64}
IMDB_AKAS_SCHEMA = {
    "title_id": pl.String, "ordering": pl.Int32, "title": pl.String, "region": pl.String,
    "language": pl.String, "types": pl.List(pl.String), "attributes": pl.List(pl.String),
    "is_original_title": pl.Boolean,
}
IMDB_CREW_SCHEMA = {"tconst": pl.String, "directors": pl.List(pl.String),
                    "writers": pl.List(pl.String)}
IMDB_PRINCIPALS_SCHEMA = {
    "tconst": pl.String, "ordering": pl.Int32, "nconst": pl.String, "category": pl.String,
    "job": pl.String, "characters": pl.List(pl.String),
}
IMDB_NAMES_SCHEMA = {
    "nconst": pl.String, "primary_name": pl.String, "birth_year": pl.Int32,
    "death_year": pl.Int32, "primary_profession": pl.List(pl.String),
    "known_for_titles": pl.List(pl.String),
}
IMDB_EPISODES_SCHEMA = {"tconst": pl.String, "parent_tconst": pl.String,
                        "season_number": pl.Int32, "episode_number": pl.Int32}


# -- transforms ----------------------------------------------------------------------------

TITLES_CHECKS: list[Check] = [
    ("tconst is not tt + digits", _bad_id("tconst", TCONST)),
    ("isAdult is not 0 or 1", ~pl.col("isAdult").is_in(["0", "1"]) | pl.col("isAdult").is_null()),
    ("startYear is not a year", bad_int("startYear", pl.Int32)),
    ("endYear is not a year", bad_int("endYear", pl.Int32)),
    ("runtimeMinutes is not an integer", bad_int("runtimeMinutes", pl.Int32)),
]


# The typed, renamed columns of a valid raw row (shared by the transform and the
# one-pass loader).
TITLES_COLUMNS: list[pl.Expr] = [
        pl.col("tconst"),
        pl.col("titleType").alias("title_type"),
        pl.col("primaryTitle").alias("primary_title"),
        pl.col("originalTitle").alias("original_title"),
        _flag("isAdult").alias("is_adult"),
        _year("startYear").alias("start_year"),
        _year("endYear").alias("end_year"),
        pl.col("runtimeMinutes").cast(pl.Int32, strict=False).alias("runtime_minutes"),
        _list("genres").fill_null(pl.lit([], pl.List(pl.String))).alias("genres"),
        (_year("startYear") // 10 * 10).alias("decade"),
]


def typed_titles(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Valid raw rows -> the typed, renamed columns of ``imdb_titles`` (no dedup)."""
    return rows.select(TITLES_COLUMNS)


def imdb_titles(raw: pl.LazyFrame) -> pl.LazyFrame:
    """title.basics -> ``imdb_titles``: one row per ``tconst``; genres as a list, typed years,
    runtime and is_adult, and the decade of the start year."""
    return good_rows(raw, TITLES_CHECKS).pipe(typed_titles).unique(subset=["tconst"], keep="any")


RATINGS_CHECKS: list[Check] = [
    ("tconst is not tt + digits", _bad_id("tconst", TCONST)),
    ("averageRating is not a number", bad_float("averageRating") | pl.col("averageRating")
     .is_null()),
    ("averageRating outside 1..10", ~pl.col("averageRating").cast(pl.Float64, strict=False)
     .is_between(1.0, 10.0)),
    ("numVotes is not a count", bad_int("numVotes") | pl.col("numVotes").is_null()),
]


# The typed, renamed columns of a valid raw row (shared by the transform and the
# one-pass loader).
RATINGS_COLUMNS: list[pl.Expr] = [
        pl.col("tconst"),
        pl.col("averageRating").cast(pl.Float64, strict=False).alias("average_rating"),
        pl.col("numVotes").cast(pl.Int64, strict=False).alias("num_votes"),
]


def typed_ratings(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Valid raw rows -> the typed, renamed columns of ``imdb_ratings`` (no dedup)."""
    return rows.select(RATINGS_COLUMNS)


def imdb_ratings(raw: pl.LazyFrame) -> pl.LazyFrame:
    """title.ratings -> ``imdb_ratings``: one row per ``tconst``."""
    return good_rows(raw, RATINGS_CHECKS).pipe(typed_ratings).unique(subset=["tconst"], keep="any")


AKAS_CHECKS: list[Check] = [
    ("titleId is not tt + digits", _bad_id("titleId", TCONST)),
    ("ordering is not an integer", bad_int("ordering", pl.Int32) | pl.col("ordering").is_null()),
]


# The typed, renamed columns of a valid raw row (shared by the transform and the
# one-pass loader).
AKAS_COLUMNS: list[pl.Expr] = [
        pl.col("titleId").alias("title_id"),
        pl.col("ordering").cast(pl.Int32, strict=False).alias("ordering"),
        pl.col("title"),
        pl.col("region"),
        pl.col("language"),
        _list("types", AKA_ARRAY_SEPARATOR).alias("types"),
        _list("attributes", AKA_ARRAY_SEPARATOR).alias("attributes"),
        _flag("isOriginalTitle").alias("is_original_title"),
]


def typed_akas(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Valid raw rows -> the typed, renamed columns of ``imdb_akas`` (no dedup)."""
    return rows.select(AKAS_COLUMNS)


def imdb_akas(raw: pl.LazyFrame) -> pl.LazyFrame:
    """title.akas -> ``imdb_akas``: one row per (title_id, ordering)."""
    return good_rows(raw, AKAS_CHECKS).pipe(typed_akas).unique(subset=["title_id", "ordering"], keep="any")


CREW_CHECKS: list[Check] = [("tconst is not tt + digits", _bad_id("tconst", TCONST))]


# The typed, renamed columns of a valid raw row (shared by the transform and the
# one-pass loader).
CREW_COLUMNS: list[pl.Expr] = [
        pl.col("tconst"),
        _list("directors").fill_null(_EMPTY_LIST).alias("directors"),
        _list("writers").fill_null(_EMPTY_LIST).alias("writers"),
]


def typed_crew(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Valid raw rows -> the typed, renamed columns of ``imdb_crew`` (no dedup)."""
    return rows.select(CREW_COLUMNS)


def imdb_crew(raw: pl.LazyFrame) -> pl.LazyFrame:
    """title.crew -> ``imdb_crew``: one row per ``tconst``; directors and writers as lists."""
    return good_rows(raw, CREW_CHECKS).pipe(typed_crew).unique(subset=["tconst"], keep="any")


PRINCIPALS_CHECKS: list[Check] = [
    ("tconst is not tt + digits", _bad_id("tconst", TCONST)),
    ("nconst is not nm + digits", _bad_id("nconst", NCONST)),
    ("ordering is not an integer", bad_int("ordering", pl.Int32) | pl.col("ordering").is_null()),
]


# The typed, renamed columns of a valid raw row (shared by the transform and the
# one-pass loader).
PRINCIPALS_COLUMNS: list[pl.Expr] = [
        pl.col("tconst"),
        pl.col("ordering").cast(pl.Int32, strict=False).alias("ordering"),
        pl.col("nconst"),
        pl.col("category"),
        pl.col("job"),
        pl.col("characters").str.json_decode(pl.List(pl.String)).alias("characters"),
]


def typed_principals(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Valid raw rows -> the typed, renamed columns of ``imdb_principals`` (no dedup)."""
    return rows.select(PRINCIPALS_COLUMNS)


def imdb_principals(raw: pl.LazyFrame) -> pl.LazyFrame:
    """title.principals -> ``imdb_principals``: one row per (tconst, ordering); the JSON array
    of characters decoded to a list."""
    return (good_rows(raw, PRINCIPALS_CHECKS).pipe(typed_principals)
            .unique(subset=["tconst", "ordering"], keep="any"))


NAMES_CHECKS: list[Check] = [
    ("nconst is not nm + digits", _bad_id("nconst", NCONST)),
    ("birthYear is not a year", bad_int("birthYear", pl.Int32)),
    ("deathYear is not a year", bad_int("deathYear", pl.Int32)),
]


# The typed, renamed columns of a valid raw row (shared by the transform and the
# one-pass loader).
NAMES_COLUMNS: list[pl.Expr] = [
        pl.col("nconst"),
        pl.col("primaryName").alias("primary_name"),
        _year("birthYear").alias("birth_year"),
        _year("deathYear").alias("death_year"),
        _list("primaryProfession").fill_null(_EMPTY_LIST).alias("primary_profession"),
        _list("knownForTitles").fill_null(_EMPTY_LIST).alias("known_for_titles"),
]


def typed_names(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Valid raw rows -> the typed, renamed columns of ``imdb_names`` (no dedup)."""
    return rows.select(NAMES_COLUMNS)


def imdb_names(raw: pl.LazyFrame) -> pl.LazyFrame:
    """name.basics -> ``imdb_names``: one row per ``nconst``."""
    return good_rows(raw, NAMES_CHECKS).pipe(typed_names).unique(subset=["nconst"], keep="any")


EPISODES_CHECKS: list[Check] = [
    ("tconst is not tt + digits", _bad_id("tconst", TCONST)),
    ("parentTconst is not tt + digits", _bad_id("parentTconst", TCONST)),
    ("seasonNumber is not an integer", bad_int("seasonNumber", pl.Int32)),
    ("episodeNumber is not an integer", bad_int("episodeNumber", pl.Int32)),
]


# The typed, renamed columns of a valid raw row (shared by the transform and the
# one-pass loader).
EPISODES_COLUMNS: list[pl.Expr] = [
        pl.col("tconst"),
        pl.col("parentTconst").alias("parent_tconst"),
        pl.col("seasonNumber").cast(pl.Int32, strict=False).alias("season_number"),
        pl.col("episodeNumber").cast(pl.Int32, strict=False).alias("episode_number"),
]


def typed_episodes(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Valid raw rows -> the typed, renamed columns of ``imdb_episodes`` (no dedup)."""
    return rows.select(EPISODES_COLUMNS)


def imdb_episodes(raw: pl.LazyFrame) -> pl.LazyFrame:
    """title.episode -> ``imdb_episodes``: one row per episode ``tconst``."""
    return good_rows(raw, EPISODES_CHECKS).pipe(typed_episodes).unique(subset=["tconst"], keep="any")


@dataclass(frozen=True)
class ImdbTable:
    dataset: str  # IMDB's file name without .tsv.gz
    table: str  # silver table
    transform: Callable[[pl.LazyFrame], pl.LazyFrame]
    checks: list[Check]
    schema: dict[str, pl.DataType]
    key: tuple[str, ...]
    typed: Callable[[pl.LazyFrame], pl.LazyFrame]
    columns: list[pl.Expr]

    @property
    def raw_key(self) -> tuple[str, ...]:
        """The key's columns as the raw file names them."""
        raw = {"title_id": "titleId"}
        return tuple(raw.get(k, k) for k in self.key)

    @property
    def filename(self) -> str:
        return f"{self.dataset}.tsv.gz"

    @property
    def spec(self) -> str:
        """The landing-zone spec: ``title.basics`` -> ``title_basics``."""
        return self.dataset.replace(".", "_")

    @property
    def raw_asset(self) -> tuple[str, str, str]:
        """The raw asset's key, where its downloads land: ``raw/imdb/<spec>``."""
        return ("raw", "imdb", self.spec)


IMDB_TABLES: tuple[ImdbTable, ...] = (
    ImdbTable("title.basics", "imdb_titles", imdb_titles, TITLES_CHECKS, IMDB_TITLES_SCHEMA,
              ("tconst",), typed_titles,
              TITLES_COLUMNS),
    ImdbTable("title.ratings", "imdb_ratings", imdb_ratings, RATINGS_CHECKS, IMDB_RATINGS_SCHEMA,
              ("tconst",), typed_ratings,
              RATINGS_COLUMNS),
    ImdbTable("title.akas", "imdb_akas", imdb_akas, AKAS_CHECKS, IMDB_AKAS_SCHEMA,
              ("title_id", "ordering"), typed_akas,
              AKAS_COLUMNS),
    ImdbTable("title.crew", "imdb_crew", imdb_crew, CREW_CHECKS, IMDB_CREW_SCHEMA, ("tconst",),
              typed_crew,
              CREW_COLUMNS),
    ImdbTable("title.principals", "imdb_principals", imdb_principals, PRINCIPALS_CHECKS,
              IMDB_PRINCIPALS_SCHEMA, ("tconst", "ordering"), typed_principals,
              PRINCIPALS_COLUMNS),
    ImdbTable("name.basics", "imdb_names", imdb_names, NAMES_CHECKS, IMDB_NAMES_SCHEMA,
              ("nconst",), typed_names,
              NAMES_COLUMNS),
    ImdbTable("title.episode", "imdb_episodes", imdb_episodes, EPISODES_CHECKS,
              IMDB_EPISODES_SCHEMA, ("tconst",), typed_episodes,
              EPISODES_COLUMNS),
)
