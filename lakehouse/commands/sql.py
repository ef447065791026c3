"""``lakehouse sql "SELECT ..." [--format text|json|csv]``: DuckDB SQL over the lake's Delta tables."""

import argparse
import os
import sys

from lakehouse import catalog
from lakehouse.sqlshell import FORMATS, SqlError, run_query, write_result


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sql",
        help="Run DuckDB SQL over every Delta table of the lake, named <layer>.<table>.",
        description="Run DuckDB SQL over the lake's Delta tables (LAKEHOUSE_ROOT, local or s3://). "
                    "Tables are named <layer>.<table>: silver.twitter_tweets, "
                    "gold.twitter_tweets_by_sentiment, ...",
    )
    parser.add_argument("query", help='the SQL, e.g. "SELECT * FROM gold.twitter_tweets_by_sentiment"; '
                                      '"-" reads it from stdin')
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format (default text)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    query = sys.stdin.read() if args.query == "-" else args.query
    if not query.strip():
        print("error: empty query", file=sys.stderr)
        return 2
    try:
        result = run_query(catalog.lake(), query)
    except SqlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # e.g. the object store failing mid-scan: still one line, no trace
        first = next((line for line in str(exc).splitlines() if line.strip()), "")
        print(f"error: {type(exc).__name__}: {first}", file=sys.stderr)
        return 1
    try:
        write_result(result, args.format, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:  # `lakehouse sql ... | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
