"""``lakehouse twitter stream``: the long-running consumer of the sample or filtered stream;
``lakehouse twitter rules list|add|delete``: the filtered stream's rules.

Every tweet line is appended (fsynced) to a local spool segment and the segment is flushed to
``raw/twitter/stream/YYYY/MM/DD/`` as one NDJSON batch when it reaches ``--max-bytes`` or
``--max-age`` (128 MB or 5 minutes by default, the Firehose buffer of the Twitter
batch pipeline this replaces). A flushed batch is
durable; on SIGTERM or Ctrl-C the open batch is flushed before the process exits, and a batch
left open by a crash is flushed by the next start on the same spool folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from lakehouse.lake.location import Lake

# The sources import Dagster (about a second): they are imported when a command runs, so that
# `lakehouse --help` and the other subcommands start fast.

log = logging.getLogger("lakehouse.twitter.stream")
DEFAULT_SPOOL = "data/spool/twitter_stream"


def register(subparsers: argparse._SubParsersAction) -> None:
    twitter = subparsers.add_parser("twitter", help="Twitter API v2 tools.")
    commands = twitter.add_subparsers(dest="twitter_command", required=True)
    stream = commands.add_parser(
        "stream", help="Consume the sample (or filtered) stream into raw NDJSON batches.",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    stream.add_argument("--filtered", action="store_true",
                        help="Use /2/tweets/search/stream (its rules set beforehand) instead "
                             "of the 1%% sample stream.")
    stream.add_argument("--max-bytes", type=int, default=128 * 1024 * 1024,
                        help="Flush a batch once it holds this many bytes (default 128 MB).")
    stream.add_argument("--max-age", type=float, default=300.0,
                        help="Flush a batch once it is this many seconds old (default 300).")
    stream.add_argument("--spool", default=os.environ.get("LAKEHOUSE_STREAM_SPOOL",
                                                          DEFAULT_SPOOL),
                        help="Local folder of the open batch (LAKEHOUSE_STREAM_SPOOL).")
    stream.add_argument("--limit", type=int, default=None,
                        help="Stop after this many tweets (default: run until SIGTERM).")
    stream.add_argument("--sample-rate", type=float, default=20.0,
                        help="Without a bearer token: sample tweets per second to replay.")
    stream.add_argument("--backoff-max", type=float, default=64.0,
                        help="Longest wait between reconnections, in seconds.")
    stream.set_defaults(func=run_stream)
    register_rules(commands)


RULES_HELP = """Manage the filtered stream's rules (/2/tweets/search/stream/rules, API v2).

  lakehouse twitter rules list
  lakehouse twitter rules add "(cinema OR filme) lang:pt -is:retweet" --tag "films in portuguese"
  lakehouse twitter rules delete 1866916266197536768
  lakehouse twitter rules delete --all

A refused rule (invalid, or deleting an id that does not exist) is printed with the API's
reason and the command exits 1; a rule that already exists is reported with its id and is not
an error (adding is then idempotent). Needs TWITTER_BEARER_TOKEN.
"""


def register_rules(commands: argparse._SubParsersAction) -> None:
    rules = commands.add_parser("rules", help="List, add or delete the filtered stream's rules.",
                                description=RULES_HELP,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = rules.add_subparsers(dest="rules_command", required=True)
    listing = actions.add_parser("list", help="Print the current rules.")
    listing.add_argument("ids", nargs="*", help="Only these rule ids.")
    listing.add_argument("--json", action="store_true", help="Print the API's answer as JSON.")
    add = actions.add_parser("add", help="Add one or more rules (the same tag for each).")
    add.add_argument("values", nargs="+", help="Rule values (the filtered stream's syntax).")
    add.add_argument("--tag", default=None, help="A tag naming the rule(s).")
    add.add_argument("--dry-run", action="store_true", help="Validate only (dry_run=true).")
    delete = actions.add_parser("delete", help="Delete rules by id (or --all).")
    delete.add_argument("ids", nargs="*", help="Rule ids to delete.")
    delete.add_argument("--all", action="store_true", help="Delete every current rule.")
    delete.add_argument("--dry-run", action="store_true", help="Validate only (dry_run=true).")
    for parser in (listing, add, delete):
        parser.set_defaults(func=run_rules)


def _error_lines(answer: dict[str, Any], tolerated: tuple[str, ...] = ()) -> tuple[list[str], bool]:
    """One line per item of the answer's ``errors``; False when one is not ``tolerated``."""
    lines, ok = [], True
    for error in answer.get("errors") or []:
        title = error.get("title", "error")
        if title in tolerated:
            lines.append(f"already exists: id {error.get('id')} value {error.get('value')!r}")
            continue
        ok = False
        details = error.get("details") or [e.get("message", "") for e in error.get("errors", [])]
        subject = f" {error['value']!r}" if error.get("value") else ""
        reason = "; ".join(d for d in details if d) or error.get("detail", "")
        lines.append(f"refused{subject}: {title}: {reason}".rstrip(": "))
    return lines, ok


def _print_rules(rules: list[dict[str, Any]]) -> None:
    for rule in rules:
        print(f"{rule.get('id')}\t{rule.get('tag') or '-'}\t{rule.get('value')}")


def run_rules(args: argparse.Namespace) -> int:
    from lakehouse.settings import env_values
    from lakehouse.sources.http import ApiError
    from lakehouse.sources.twitter import TWITTER_ENV, TwitterResource

    twitter = TwitterResource(**env_values(TWITTER_ENV))
    if twitter.is_sample:
        print("lakehouse twitter rules needs TWITTER_BEARER_TOKEN (API v2 app bearer token)",
              file=sys.stderr)
        return 2
    client = twitter.client()
    try:
        if args.rules_command == "list":
            answer = client.list_rules(args.ids or None)
            if args.json:
                print(json.dumps(answer, indent=2, ensure_ascii=False))
                return 0
            _print_rules(answer.get("data") or [])
            print(f"{answer.get('meta', {}).get('result_count', 0)} rule(s)")
            lines, ok = _error_lines(answer)
        elif args.rules_command == "add":
            rules = [{"value": v, **({"tag": args.tag} if args.tag else {})} for v in args.values]
            answer = client.add_rules(rules, dry_run=args.dry_run)
            _print_rules(answer.get("data") or [])
            summary = answer.get("meta", {}).get("summary", {})
            print(f"{'dry run: ' if args.dry_run else ''}created {summary.get('created', 0)}, "
                  f"not created {summary.get('not_created', 0)}")
            lines, ok = _error_lines(answer, tolerated=("DuplicateRule",))
        else:
            ids = list(args.ids)
            if args.all:
                ids += [r["id"] for r in client.list_rules().get("data") or []]
            if not ids:
                print("no rule to delete")
                return 0 if args.all else 2
            answer = client.delete_rules(ids, dry_run=args.dry_run)
            summary = answer.get("meta", {}).get("summary", {})
            print(f"{'dry run: ' if args.dry_run else ''}deleted {summary.get('deleted', 0)}, "
                  f"not deleted {summary.get('not_deleted', 0)}")
            lines, ok = _error_lines(answer)
    except ApiError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    for line in lines:
        print(line, file=sys.stderr if not ok else sys.stdout)
    return 0 if ok else 1


def sample_connect(rate: float, stop: threading.Event,
                   filtered: bool = False) -> Callable[[], Iterator[bytes]]:
    """The sample stream replayed once at ``rate`` tweets/s, keep-alives included (with
    ``filtered``, lines carry ``matching_rules`` as the filtered stream's do)."""
    from lakehouse.sources.twitter_sample import SampleTwitterApi

    def connect() -> Iterator[bytes]:
        for line in SampleTwitterApi().stream_lines(every=10, filtered=filtered):
            if rate > 0 and stop.wait(1.0 / rate):
                return
            yield line
        stop.set()  # the sample is finite: end like a stopped consumer, not a dropped stream
    return connect


def run_stream(args: argparse.Namespace) -> int:
    from lakehouse.settings import env_values
    from lakehouse.sources.twitter import TWITTER_ENV, TwitterResource, consume_stream, stream_writer

    twitter = TwitterResource(**env_values(TWITTER_ENV))
    lake = Lake.from_env()
    stop = threading.Event()
    writer = stream_writer(lake, args.spool, max_bytes=args.max_bytes, max_age=args.max_age)
    if twitter.is_sample:
        log.info("no TWITTER_BEARER_TOKEN: replaying the sample stream")
        connect = sample_connect(args.sample_rate, stop, filtered=args.filtered)
    else:
        client = twitter.client()
        def connect() -> Iterator[bytes]:
            return client.stream_lines(filtered=args.filtered)

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %s: flushing the open batch and stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    writer.run_age_sealer(stop, every=min(1.0, args.max_age))
    result: dict[str, object] = {}

    def work() -> None:
        result["stats"] = consume_stream(connect, writer, stop, max_tweets=args.limit,
                                         backoff_max=args.backoff_max)

    # The consumer blocks on the socket; the main thread stays free to take the signal.
    worker = threading.Thread(target=work, name="twitter-stream", daemon=True)
    worker.start()
    while worker.is_alive() and not stop.is_set():
        worker.join(0.2)
    deadline = time.monotonic() + 5.0
    while worker.is_alive() and time.monotonic() < deadline:
        worker.join(0.1)
    writer.close()  # waits for a line being appended, then flushes the open batch
    stats = result.get("stats")
    log.info("stream stopped: %s; %d batch(es) flushed: %s", stats, len(writer.sealed),
             ", ".join(writer.sealed) or "-")
    print(f"flushed {len(writer.sealed)} batch(es)", flush=True)
    return 0
