"""``lakehouse twitter stream``: the long-running consumer of the sample or filtered stream.

Every tweet line is appended (fsynced) to a local spool segment and the segment is flushed to
``raw/twitter/json/stream/YYYY/MM/DD/`` as one NDJSON batch when it reaches ``--max-bytes`` or
``--max-age`` (128 MB or 5 minutes by default, the Firehose buffer of the Twitter
batch pipeline this replaces). A flushed batch is
durable; on SIGTERM or Ctrl-C the open batch is flushed before the process exits, and a batch
left open by a crash is flushed by the next start on the same spool folder.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

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


def sample_connect(rate: float, stop: threading.Event) -> Callable[[], Iterator[bytes]]:
    from lakehouse.sources.twitter_sample import SampleTwitterApi

    """The sample stream replayed once at ``rate`` tweets/s, keep-alives included."""
    def connect() -> Iterator[bytes]:
        for line in SampleTwitterApi().stream_lines(every=10):
            if rate > 0 and stop.wait(1.0 / rate):
                return
            yield line
        stop.set()  # the sample is finite: end like a stopped consumer, not a dropped stream
    return connect


def run_stream(args: argparse.Namespace) -> int:
    from lakehouse.sources.twitter import TwitterResource, consume_stream, stream_writer

    twitter = TwitterResource()
    lake = Lake.from_env()
    stop = threading.Event()
    writer = stream_writer(lake, args.spool, max_bytes=args.max_bytes, max_age=args.max_age)
    if twitter.is_sample:
        log.info("no TWITTER_BEARER_TOKEN: replaying the sample stream")
        connect = sample_connect(args.sample_rate, stop)
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
