"""Checks on the movies silver tables, read back from the tables as written: the natural key is
unique and every column of the table's schema is present.

The silver loads write a table only when its source changed, so these checks run as separate
asset checks (in the same run as the asset, or on their own from the UI) rather than inside
the load: an unchanged table is checked too.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import dagster as dg
import polars as pl

from lakehouse.lake.delta import open_table, scan
from lakehouse.lake.location import Lake
from lakehouse.lake.resource import LakeResource
from lakehouse.transforms.imdb import IMDB_TABLES
from lakehouse.transforms.movielens import (
    MOVIELENS_TABLES,
    MOVIELENS_TAG_COUNTS_SCHEMA,
    movielens_tag_counts,
)
from lakehouse.transforms.tmdb import (
    TMDB_CREDITS_SCHEMA,
    TMDB_MOVIES_SCHEMA,
    TMDB_REQUESTS_SCHEMA,
    TMDB_TV_SCHEMA,
    tmdb_credits,
    tmdb_movies,
    tmdb_requests,
    tmdb_tv,
)


@dataclass(frozen=True)
class SilverTable:
    name: str
    key: tuple[str, ...]
    schema: Mapping[str, pl.DataType]
    description: str


def _doc(transform: Callable[..., object]) -> str:
    return " ".join((transform.__doc__ or "").split())


# The key of each table is the grain its transform's docstring names.
_MOVIELENS_KEYS = {"movielens_movies": ("movie_id",), "movielens_ratings": ("user_id", "movie_id"),
                   "movielens_tags": ("user_id", "movie_id", "tag"),
                   "movielens_links": ("movie_id",)}
SILVER_TABLES: dict[str, SilverTable] = {t.name: t for t in (
    *(SilverTable(t.table, t.key, t.schema, _doc(t.transform)) for t in IMDB_TABLES),
    *(SilverTable(t.table, _MOVIELENS_KEYS[t.table], t.schema, _doc(t.transform))
      for t in MOVIELENS_TABLES),
    SilverTable("movielens_tag_counts", ("movie_id", "tag"), MOVIELENS_TAG_COUNTS_SCHEMA,
                _doc(movielens_tag_counts)),
    SilverTable("tmdb_movies", ("tmdb_id",), TMDB_MOVIES_SCHEMA, _doc(tmdb_movies)),
    SilverTable("tmdb_tv", ("tmdb_id",), TMDB_TV_SCHEMA, _doc(tmdb_tv)),
    SilverTable("tmdb_credits", ("media_type", "tmdb_id", "credit_id"), TMDB_CREDITS_SCHEMA,
                _doc(tmdb_credits)),
    SilverTable("tmdb_requests", ("endpoint", "key"), TMDB_REQUESTS_SCHEMA, _doc(tmdb_requests)),
)}


def check_silver_table(lake: Lake, table: SilverTable) -> dg.AssetCheckResult:
    """Missing columns and duplicate keys of ``silver/<table>`` as it is in the lake."""
    uri = lake.table_uri("silver", table.name)
    if open_table(lake, uri) is None:
        return dg.AssetCheckResult(passed=False, metadata={"table": "not written yet"})
    frame = scan(lake, uri)
    present = frame.collect_schema().names()
    missing = [c for c in table.schema if c not in present]
    if missing or any(k not in present for k in table.key):
        return dg.AssetCheckResult(passed=False, metadata={
            "missing_columns": dg.MetadataValue.json(missing)})
    counts = frame.select(pl.len().alias("rows"),
                          pl.struct(list(table.key)).n_unique().alias("keys")).collect()
    rows, keys = counts.row(0)
    return dg.AssetCheckResult(passed=rows == keys, metadata={
        "rows": rows, "duplicate_key_rows": rows - keys, "key": ", ".join(table.key),
        "missing_columns": dg.MetadataValue.json([])})


def _silver_check(table: SilverTable) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=dg.AssetKey(["silver", table.name]), name="unique_key_and_columns",
                    description=f"One row per ({', '.join(table.key)}) and every column of the "
                                "table's schema present, read from the table as written.")
    def _check(lake: LakeResource) -> dg.AssetCheckResult:
        return check_silver_table(lake.lake(), table)
    return _check


movies_silver_checks = [_silver_check(t) for t in SILVER_TABLES.values()]
