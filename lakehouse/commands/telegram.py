"""``lakehouse telegram webhook | set-webhook | delete-webhook``."""

import argparse
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from lakehouse.lake.location import Lake
from lakehouse.secrets import redact
from lakehouse.serving import sigterm_as_interrupt
from lakehouse.sources.http import ApiError

if TYPE_CHECKING:
    from lakehouse.sources.telegram import TelegramBotClient

# The sources import Dagster (about a second): they are imported when a command runs, so that
# `lakehouse --help` and the other subcommands start fast.

log = logging.getLogger("lakehouse.telegram")


def _webhook(args: argparse.Namespace) -> int:
    from lakehouse.lake.segments import SpoolInUseError
    from lakehouse.sources.telegram import parse_chat_ids
    from lakehouse.sources.telegram_webhook import Limits, WebhookReceiver

    try:
        receiver = WebhookReceiver(
            Lake.from_env(),
            Path(args.spool_dir),
            os.environ.get("TELEGRAM_WEBHOOK_SECRET"),
            parse_chat_ids(os.environ.get("TELEGRAM_CHAT_IDS")),
            host=args.host,
            port=args.port,
            path=args.path,
            max_segment_bytes=int(args.segment_mb * 1024 * 1024),
            max_segment_age=args.segment_seconds,
            limits=Limits(max_connections=args.max_connections, head_seconds=args.request_seconds,
                          body_seconds=args.request_seconds,
                          shutdown_seconds=args.shutdown_seconds),
        )
    except SpoolInUseError as exc:
        print(f"error: {exc}")
        return 2
    # uvicorn takes SIGTERM and Ctrl-C to stop gracefully (in-flight requests answered, the
    # open segment sealed, bounded by --shutdown-seconds), then raises the signal again: this
    # turns that last SIGTERM into a clean exit.
    sigterm_as_interrupt()
    log.info("listening on http://%s:%d%s", args.host, receiver.port, args.path)
    with contextlib.suppress(KeyboardInterrupt):
        receiver.serve_forever()
    return 0


def _report(call: Callable[["TelegramBotClient"], dict], done: str) -> int:
    """Run one Bot API call with the configured token; one clear line either way (the API's
    own words are printed redacted: an answer may echo the token or the webhook secret)."""
    from lakehouse.settings import env_values
    from lakehouse.sources.telegram import TELEGRAM_ENV, TelegramResource

    resource = TelegramResource(**env_values(TELEGRAM_ENV))
    if resource.is_sample:
        print("error: TELEGRAM_BOT_TOKEN is not set")
        return 2
    try:
        answer = call(resource.client())
    except ApiError as exc:
        print(f"error: {exc}")
        return 1
    print(redact(str(answer.get("description", done))))
    return 0


def _set_webhook(args: argparse.Namespace) -> int:
    from lakehouse.sources.telegram import ALLOWED_UPDATES

    secret = os.environ.get("TELEGRAM_WEBHOOK_SECRET")
    return _report(lambda c: c.set_webhook(args.url, secret, ALLOWED_UPDATES), "webhook set")


def _delete_webhook(args: argparse.Namespace) -> int:
    return _report(lambda c: c.delete_webhook(drop_pending_updates=args.drop_pending_updates),
                   "webhook deleted")


def register(subparsers: argparse._SubParsersAction) -> None:
    telegram = subparsers.add_parser("telegram", help="Telegram Bot API: webhook and its setup")
    commands = telegram.add_subparsers(dest="telegram_command", required=True)

    webhook = commands.add_parser("webhook", help="receive updates over HTTP and land them")
    webhook.add_argument("--host", default="127.0.0.1")
    webhook.add_argument("--port", type=int, default=8443)
    webhook.add_argument("--path", default="/telegram/webhook")
    webhook.add_argument("--spool-dir", default=os.environ.get("LAKEHOUSE_SPOOL_DIR",
                                                               "data/spool/telegram"))
    webhook.add_argument("--segment-mb", type=float, default=64, help="seal a segment at this size")
    webhook.add_argument("--segment-seconds", type=float, default=300,
                         help="seal a segment at this age")
    webhook.add_argument("--max-connections", type=int, default=512,
                         help="concurrent connections; beyond them requests get 503")
    webhook.add_argument("--request-seconds", type=float, default=10.0,
                         help="a request's head, then its body, must arrive within this")
    webhook.add_argument("--shutdown-seconds", type=float, default=10.0,
                         help="on SIGTERM, wait this long for requests and the last upload")
    webhook.set_defaults(func=_webhook)

    set_hook = commands.add_parser("set-webhook", help="register URL with Telegram "
                                   "(secret_token from TELEGRAM_WEBHOOK_SECRET)")
    set_hook.add_argument("url")
    set_hook.set_defaults(func=_set_webhook)

    delete_hook = commands.add_parser("delete-webhook", help="remove the webhook (to poll again)")
    delete_hook.add_argument("--drop-pending-updates", action="store_true")
    delete_hook.set_defaults(func=_delete_webhook)
