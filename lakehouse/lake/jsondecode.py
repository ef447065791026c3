"""JSON text -> typed Polars structs, decoded by DuckDB's JSON reader (yyjson).

Measured here on Telegram updates it is several times faster than ``str.json_decode``, so the
pipelines decode with it and keep their transforms in Polars over the typed structs. The
target type is a Polars dtype (the schemas stay data, shared by tests, readers and writers).
Text that is not JSON decodes to null and is flagged, so the caller can quarantine it.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import polars as pl

_SCALARS = {pl.Int64: "BIGINT", pl.Int32: "INTEGER", pl.String: "VARCHAR", pl.Boolean: "BOOLEAN",
            pl.Float64: "DOUBLE"}


def duckdb_structure(dtype: pl.DataType) -> object:
    """The JSON structure argument of DuckDB's ``from_json`` for a Polars dtype."""
    if isinstance(dtype, pl.Struct):
        return {field.name: duckdb_structure(field.dtype) for field in dtype.fields}
    if isinstance(dtype, pl.List):
        return [duckdb_structure(dtype.inner)]
    for scalar, name in _SCALARS.items():
        if dtype == scalar:
            return name
    raise TypeError(f"no DuckDB JSON type for {dtype}")


@contextmanager
def json_decoder() -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection for a run of ``decode_json`` calls (the pieces of a load).

    Opening a database costs about 40 ms of CPU time, more than decoding a hundred records:
    a load decoding 16 MiB pieces paid it per piece. One thread: the load's other thread is
    delta-rs writing the pieces already decoded, and DuckDB's second thread added a third of
    the CPU time (measured on 100k tweets, 1.0 s one thread, 1.3-1.4 s two) for no less wall
    time.
    """
    with duckdb.connect(config={"threads": 1}) as con:
        con.execute("set enable_progress_bar = false")  # a long decode draws one in run logs
        yield con


def decode_json(frame: pl.DataFrame, column: str, dtype: pl.Struct, alias: str,
                valid_flag: str | None = None,
                con: duckdb.DuckDBPyConnection | None = None) -> pl.DataFrame:
    """``frame`` plus ``alias``: ``column`` decoded to ``dtype`` (null where not JSON).

    With ``valid_flag``, a Boolean column of that name says whether the text was valid JSON.
    Fields whose value has another type than declared decode to null rather than failing.
    ``con``: a ``json_decoder()`` connection to decode on (else one of its own).
    """
    if con is None:
        with json_decoder() as own:
            return decode_json(frame, column, dtype, alias, valid_flag, own)
    structure = json.dumps(duckdb_structure(dtype)).replace("'", "''")
    # ``try`` turns a text that is not JSON into null instead of failing the query, so each
    # text is parsed once; only the null results are checked again, telling "not JSON" from
    # a JSON ``null``.
    flag = (f', case when "{alias}" is not null then true else json_valid("{column}") end '
            f'as "{valid_flag}"' if valid_flag else "")
    # Polars' own layout (string views): DuckDB reads it without a copy of the texts.
    con.register("frame", frame.select(column).to_arrow(compat_level=pl.CompatLevel.newest()))
    try:
        decoded = con.sql(
            f"""select "{alias}"{flag} from (select try(from_json("{column}", '{structure}'))
                as "{alias}", "{column}" from frame)"""
        ).pl()
    finally:
        con.unregister("frame")
    if decoded.schema[alias] != dtype:  # a cast to the very same type still copies it all
        decoded = decoded.cast({alias: dtype})
    return pl.concat([frame, decoded], how="horizontal")
