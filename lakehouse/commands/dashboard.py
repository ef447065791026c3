"""``lakehouse dashboard [--port P] [--host H]``: tweet sentiment, Telegram, Action & Adventure, live."""

import argparse
import logging

from lakehouse import catalog
from lakehouse.dashboard.server import DashboardServer
from lakehouse.serving import serve_until_stopped

log = logging.getLogger("lakehouse.dashboard")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dashboard", help="Serve the live dashboard: tweet sentiment, Telegram activity, Action & Adventure.",
        description="Serve a page with the tweets processed and their counts by sentiment over time "
                    "(all languages from gold, or one language from silver/twitter_sentiment), Telegram "
                    "messages per day and per hour, and the Action & Adventure overview per year; the "
                    "page refreshes itself as new batches land.")
    parser.add_argument("--port", type=int, default=8050, help="port (default 8050; 0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--refresh", type=float, default=5.0, help="page refresh period in seconds")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    lake = catalog.lake()  # LAKEHOUSE_ROOT, else the project's data/lake wherever this runs
    server = DashboardServer(lake, args.host, args.port, args.refresh)
    # The URL on stdout (flushed) so scripts and tests can find a port chosen with --port 0.
    print(f"dashboard on {server.url} (lake {lake.root})", flush=True)
    serve_until_stopped(server, log)
    return 0
