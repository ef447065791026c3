"""DuckDB SQL over the lake's Delta tables, each named ``<layer>.<table>`` (``silver.twitter_tweets``).

Tables are found by listing ``<root>/<layer>/*/_delta_log`` (local folder or S3, through the
lake's own filesystem), and each one is registered as a DuckDB view over the Arrow dataset that
delta-rs gives for its current version: DuckDB pushes projections and filters into the dataset,
so only the needed columns and files are read. DuckDB's own ``delta`` extension is not used: it
downloads itself at run time, which fails offline.

Only the tables a query names are opened (one Delta log read each), so a query over one gold
table costs the same in a lake of three tables or of three hundred.
"""

from __future__ import annotations

import csv
import difflib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import IO, Any

import duckdb
from deltalake import DeltaTable

from lakehouse.lake.location import Lake

# Layers that hold Delta tables (raw/ holds files as received).
TABLE_LAYERS = ("bronze", "silver", "gold", "quarantine")
FORMATS = ("text", "json", "csv")

# `silver.twitter_tweets`, `Silver . "twitter_tweets"`: a layer-qualified name anywhere in the query text.
_QUALIFIED = re.compile(
    r'\b(' + "|".join(TABLE_LAYERS) + r')\s*\.\s*(?:"([^"]+)"|([A-Za-z_][A-Za-z0-9_]*))',
    re.IGNORECASE,
)


class SqlError(Exception):
    """A query that cannot run: the message is one line meant for the user."""


@dataclass(frozen=True)
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def discover_tables(lake: Lake, layers: Sequence[str] = TABLE_LAYERS) -> dict[str, str]:
    """``{"<layer>.<table>": uri}`` for every folder ``<root>/<layer>/<table>/_delta_log``."""
    tables = {f"{layer}.{table}": lake.table_uri(layer, table)
              for layer in layers for table in lake.delta_tables(layer)}
    return dict(sorted(tables.items()))


def mentioned_tables(query: str) -> set[str]:
    """The ``layer.table`` names a query text mentions (lower case, as DuckDB resolves them)."""
    return {f"{m.group(1).lower()}.{(m.group(2) or m.group(3)).lower()}"
            for m in _QUALIFIED.finditer(query)}


def table_exists(lake: Lake, name: str) -> bool:
    layer, _, table = name.partition(".")
    return lake.is_dir(f"{layer}/{table}/_delta_log")


def connect(lake: Lake, names: Iterable[str] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a view ``<layer>.<table>`` per Delta table of ``names``.

    ``names=None`` registers every table of the lake.
    """
    uris = discover_tables(lake) if names is None else {
        name: lake.table_uri(*name.split(".", 1)) for name in names}
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")  # lake timestamps are UTC; show them so
    for layer in TABLE_LAYERS:
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{layer}"')
    for name, uri in uris.items():
        layer, table = name.split(".", 1)
        try:
            dataset = DeltaTable(uri, storage_options=lake.storage_options or None).to_pyarrow_dataset()
        except Exception as exc:  # a broken or half-written table: name it, do not dump a trace
            con.close()
            raise SqlError(f"cannot open {name} at {uri}: {_first_line(exc)}") from exc
        hidden = f"__lake_{layer}__{table}"
        con.register(hidden, dataset)
        con.execute(f'CREATE VIEW "{layer}"."{table}" AS SELECT * FROM "{hidden}"')
    return con


def run_query(lake: Lake, query: str) -> Result:
    """Run ``query`` over the lake; raise ``SqlError`` with one clear line when it cannot run."""
    named = mentioned_tables(query)
    if named:
        present = {name for name in named if table_exists(lake, name)}
        # A name like `gold.x` may be a column of an alias called gold: only fail on it if
        # DuckDB itself cannot resolve the query.
        missing = sorted(named - present)
        con = connect(lake, present)
    else:
        # No layer-qualified name (SHOW ALL TABLES, information_schema, ...): show everything.
        missing = []
        con = connect(lake)
    try:
        with con:
            cursor = con.execute(query)
            if cursor.description is None:
                return Result([], [])
            columns = [d[0] for d in cursor.description]
            return Result(columns, cursor.fetchall())
    except duckdb.CatalogException as exc:
        if missing:
            raise SqlError(unknown_tables_message(lake, missing)) from exc
        raise SqlError(_with_layer_hint(lake, _first_line(exc))) from exc
    except duckdb.Error as exc:
        raise SqlError(_first_line(exc)) from exc


def unknown_tables_message(lake: Lake, missing: list[str]) -> str:
    """``unknown table silver.twitter_tweetz (did you mean silver.twitter_tweets?)``, or what the
    layer holds."""
    known = list(discover_tables(lake))
    if not known:
        return f"unknown table {', '.join(missing)} (no Delta tables under {lake.root})"
    hints = []
    for name in missing:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.75)
        if close:
            hints.append(f"did you mean {' or '.join(close)}?")
            continue
        layer = name.split(".", 1)[0]
        same_layer = [k for k in known if k.startswith(f"{layer}.")]
        shown = ", ".join(same_layer[:8])
        if len(same_layer) > 8:
            shown += f" and {len(same_layer) - 8} more"
        hints.append(f"{layer} has: {shown}" if same_layer else f"{layer} has no tables")
    return f"unknown table {', '.join(missing)} ({'; '.join(hints)})"


def _with_layer_hint(lake: Lake, message: str) -> str:
    """An unqualified name (``FROM twitter_tweets``) gets the hint that tables are ``<layer>.<table>``."""
    found = re.search(r"Table with name (\S+) does not exist", message)
    if not found:
        return message
    short = found.group(1).strip('"').lower()
    matches = [name for name in discover_tables(lake) if name.split(".", 1)[1] == short]
    if matches:
        message += f" (tables are named <layer>.<table>: {' or '.join(matches)})"
    return message


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


# -- output ----------------------------------------------------------------------------------------

def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)  # exact; a float would round
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _text_cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"  # as SQL (and DuckDB's own CSV) writes them
    if isinstance(value, datetime | date | time):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return str(value).replace("\n", "\\n")


def format_rows(result: Result, fmt: str) -> Iterator[str]:
    """The result as text lines (an aligned table), one JSON array, or CSV with a header."""
    if fmt == "json":
        records = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
        yield json.dumps(records, default=_json_value, ensure_ascii=False, indent=1) + "\n"
        return
    if fmt == "csv":
        yield from _csv_lines(result)
        return
    if not result.columns:
        yield "OK\n"
        return
    cells = [[_text_cell(v) for v in row] for row in result.rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(result.columns)]
    numeric = [all(isinstance(row[i], int | float | Decimal) for row in result.rows
                   if row[i] is not None) and bool(result.rows) for i in range(len(widths))]

    def line(values: Sequence[str]) -> str:
        return " | ".join(v.rjust(w) if num else v.ljust(w)
                          for v, w, num in zip(values, widths, numeric, strict=True)).rstrip() + "\n"

    yield line(result.columns)
    yield "-+-".join("-" * w for w in widths) + "\n"
    for row in cells:
        yield line(row)
    yield f"({len(cells)} row{'s' if len(cells) != 1 else ''})\n"


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date | time | bytes):
        return _json_value(value)
    return value


def _csv_lines(result: Result) -> Iterator[str]:
    class _Line:
        text = ""

        def write(self, s: str) -> None:
            self.text += s

    buffer = _Line()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in [result.columns, *result.rows]:
        buffer.text = ""
        writer.writerow([_csv_cell(v) for v in row])
        yield buffer.text


def write_result(result: Result, fmt: str, out: IO[str]) -> None:
    for chunk in format_rows(result, fmt):
        out.write(chunk)
