"""``lakehouse tables [--layer L] [--format text|json|csv]``: the lake's catalogue of Delta tables."""

import argparse
import os
import sys

from lakehouse.sqlshell import FORMATS, Result, write_result


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tables", help="List every Delta table of the lake: rows, version, last update, description.",
        description="The catalogue of the lake (LAKEHOUSE_ROOT, local or s3://): one line per Delta "
                    "table with its row count, Delta version, last update (UTC) and description, "
                    "as catalog.tables() returns it.")
    parser.add_argument("--layer", choices=("bronze", "silver", "gold", "quarantine"),
                        help="only this layer")
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format (default text)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import polars as pl

    from lakehouse import catalog

    try:
        frame = catalog.tables(args.layer)
    except Exception as exc:  # storage unreachable, a broken table: one line, no trace
        first = next((line for line in str(exc).splitlines() if line.strip()), "")
        print(f"error: {type(exc).__name__}: {first}", file=sys.stderr)
        return 1
    if frame.is_empty():
        print(f"no Delta tables under {catalog.lake().root}", file=sys.stderr)
        return 1
    try:
        if args.format == "text":  # one screen line per table: seconds, a shortened description
            frame = frame.with_columns(
                pl.col("last_update").dt.truncate("1s").dt.replace_time_zone(None),
                pl.when(pl.col("description").str.len_chars() > 90)
                .then(pl.col("description").str.slice(0, 87) + "...")
                .otherwise(pl.col("description")).alias("description"))
        write_result(Result(frame.columns, frame.rows()), args.format, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
