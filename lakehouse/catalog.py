"""The analysts' entry to the lake: list, read and query every Delta table from Python.

```python
from lakehouse import catalog

catalog.tables()                                   # layer, table, rows, version, last update, description
catalog.columns("silver.twitter_tweets")           # column, type, comment
catalog.read("silver.twitter_tweets")              # a Polars DataFrame (lazy=True: a LazyFrame)
catalog.read("gold.twitter_tweets_by_sentiment", version=0)  # time travel to an earlier Delta version
catalog.history("silver.twitter_tweets")           # the table's versions, newest first
catalog.duckdb().sql("select * from gold.twitter_tweets_by_sentiment").pl()   # DuckDB over every table
```

The lake is ``LAKEHOUSE_ROOT`` (a local folder or ``s3://bucket/prefix``) or, when unset, this
project's ``data/lake`` as an absolute path, so a notebook in ``notebooks/`` (or anywhere) reads the
same lake as ``make demo`` wrote. On S3 the usual ``AWS_*`` variables are passed to delta-rs as
storage options (``Lake.from_env``); nothing else is needed. Tables are named ``<layer>.<table>``
as in ``lakehouse sql``, whose DuckDB connection ``duckdb()`` is.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, overload

import duckdb as _duckdb
import polars as pl
import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from lakehouse import sqlshell
from lakehouse.lake import table_docs
from lakehouse.lake.delta import row_count
from lakehouse.lake.location import Lake

PROJECT_DIR = Path(__file__).resolve().parents[1]
LAYERS = sqlshell.TABLE_LAYERS
TABLES_SCHEMA = {"layer": pl.String, "table": pl.String, "rows": pl.Int64, "version": pl.Int64,
                 "last_update": pl.Datetime("ms", "UTC"), "description": pl.String}


def default_root() -> str:
    """The project's ``data/lake``, absolute; the working folder's when not run from a checkout."""
    if (PROJECT_DIR / "pyproject.toml").exists():
        return str(PROJECT_DIR / "data" / "lake")
    return str(Path("data/lake").resolve())


def lake() -> Lake:
    """The lake the catalog reads: ``LAKEHOUSE_ROOT``, else the project's ``data/lake``."""
    return Lake.from_env(os.environ.get("LAKEHOUSE_ROOT") or default_root())


def _split(name: str) -> tuple[str, str]:
    layer, dot, table = name.strip().partition(".")
    if not dot or layer not in LAYERS or not table:
        raise ValueError(f"table names are <layer>.<table> with layer one of {', '.join(LAYERS)}: "
                         f"got {name!r}")
    return layer, table


def _open(the_lake: Lake, name: str, version: int | None = None) -> DeltaTable:
    layer, table = _split(name)
    try:
        return DeltaTable(the_lake.table_uri(layer, table), version=version,
                          storage_options=the_lake.storage_options or None)
    except TableNotFoundError:
        raise KeyError(sqlshell.unknown_tables_message(the_lake, [name])) from None


def tables(layer: str | None = None) -> pl.DataFrame:
    """One row per Delta table: layer, table, rows, Delta version, last update (UTC), description.

    Rows come from the Delta log's statistics (no data is read); the description is the one the
    table carries (``table_docs``), else the dbt catalogue's.
    """
    the_lake = lake()
    docs = table_docs.catalogue()
    rows = []
    for name in sqlshell.discover_tables(the_lake, [layer] if layer else LAYERS):
        delta = _open(the_lake, name)
        last = delta.history(1)
        doc = docs.get(name)
        rows.append({
            "layer": name.split(".", 1)[0], "table": name.split(".", 1)[1],
            "rows": row_count(delta), "version": delta.version(),
            "last_update": datetime.fromtimestamp(last[0]["timestamp"] / 1000, UTC) if last else None,
            "description": delta.metadata().description or (doc.description if doc else None),
        })
    return pl.DataFrame(rows, schema=TABLES_SCHEMA)


def columns(name: str) -> pl.DataFrame:
    """The columns of a table: name, (Arrow) type, comment."""
    delta = _open(lake(), name)
    comments = table_docs.column_comments(delta)
    fields = list(pa.schema(delta.schema().to_arrow()))
    return pl.DataFrame({"column": [f.name for f in fields],
                         "type": [str(f.type) for f in fields],
                         "comment": [comments.get(f.name) for f in fields]},
                        schema={"column": pl.String, "type": pl.String, "comment": pl.String})


@overload
def read(name: str, version: int | None = ..., lazy: Literal[False] = ...) -> pl.DataFrame: ...
@overload
def read(name: str, version: int | None = ..., *, lazy: Literal[True]) -> pl.LazyFrame: ...


def read(name: str, version: int | None = None, lazy: bool = False) -> pl.DataFrame | pl.LazyFrame:
    """A table as Polars: eager by default, ``lazy=True`` for a LazyFrame (filters on partition
    columns prune files); ``version`` reads an earlier Delta version (time travel)."""
    the_lake = lake()
    _open(the_lake, name, version)  # a clear KeyError for an unknown table or version
    uri = the_lake.table_uri(*_split(name))
    frame = pl.scan_delta(uri, version=version, storage_options=the_lake.storage_options or None)
    return frame if lazy else frame.collect()


def history(name: str) -> pl.DataFrame:
    """The table's versions, newest first: version, timestamp (UTC), operation, rows written."""
    delta = _open(lake(), name)
    entries = delta.history()
    return pl.DataFrame({
        "version": [e.get("version") for e in entries],
        "timestamp": [datetime.fromtimestamp(e["timestamp"] / 1000, UTC) for e in entries],
        "operation": [e.get("operation") for e in entries],
        "rows_added": [(e.get("operationMetrics") or {}).get("num_added_rows") for e in entries],
    }, schema={"version": pl.Int64, "timestamp": pl.Datetime("ms", "UTC"), "operation": pl.String,
               "rows_added": pl.Int64})


def duckdb() -> _duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with every table as a view ``<layer>.<table>`` (what ``lakehouse sql``
    runs on). Views read the tables' current versions through delta-rs, offline."""
    return sqlshell.connect(lake())
