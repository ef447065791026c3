"""The webhook receiver: Telegram POSTs each Update here; we land it before answering 200.

- 401 unless ``X-Telegram-Bot-Api-Secret-Token`` equals the configured secret (compared in
  constant time); 413 over 1 MiB; 400 for a body that is not a JSON object.
- Updates from chats outside the allow-list are answered 200 (so Telegram stops retrying) but
  not landed; they are counted, and ``GET /healthz`` shows the counters.
- 200 only after the body is fsynced into a spool segment (``SegmentWriter``); segments are
  sealed into the landing zone by size and age, and on restart after a crash.
"""

import hmac
import json
import logging
import threading
from collections import Counter
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from lakehouse.lake.location import Lake
from lakehouse.lake.segments import SegmentWriter
from lakehouse.sources.telegram_landing import webhook_key

MAX_BODY_BYTES = 1024 * 1024
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
log = logging.getLogger(__name__)


def chat_id_of(update: dict) -> int | None:
    for value in update.values():
        if isinstance(value, dict):
            chat = value.get("chat") or (value.get("message") or {}).get("chat")
            if isinstance(chat, dict) and isinstance(chat.get("id"), int):
                return chat["id"]
    return None


class WebhookReceiver:
    """The HTTP server plus the segment writer behind it."""

    def __init__(self, lake: Lake, spool_dir: Path, secret: str | None,
                 allowed_chat_ids: frozenset[int] = frozenset(), *, host: str = "127.0.0.1",
                 port: int = 8443, path: str = "/telegram/webhook",
                 max_segment_bytes: int = 64 * 1024 * 1024, max_segment_age: float = 300.0):
        if not secret:
            log.warning("TELEGRAM_WEBHOOK_SECRET is not set: every POST will be refused (401)")
        self.secret = (secret or "").encode()
        self.allowed = allowed_chat_ids
        self.path = path
        self.counters: Counter[str] = Counter()
        self.writer = SegmentWriter(lake, spool_dir, webhook_key, max_bytes=max_segment_bytes,
                                    max_age=max_segment_age)
        self._stop = threading.Event()
        self.server = ThreadingHTTPServer((host, port), self._handler_class())
        self.server.daemon_threads = True

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def serve_forever(self) -> None:
        self.writer.run_age_sealer(self._stop)
        try:
            self.server.serve_forever(poll_interval=0.2)
        finally:
            self._stop.set()
            self.writer.close()

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "lakehouse-telegram-webhook"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                log.info("%s %s", self.address_string(), format % args)

            def _answer(self, status: HTTPStatus, payload: dict) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/healthz":
                    self._answer(HTTPStatus.OK, {"status": "ok", **receiver.counters})
                else:
                    self._answer(HTTPStatus.NOT_FOUND, {"error": "not found"})

            def do_POST(self) -> None:  # noqa: N802
                if self.path.split("?")[0] != receiver.path:
                    self._answer(HTTPStatus.NOT_FOUND, {"error": "not found"})
                    return
                given = (self.headers.get(SECRET_HEADER) or "").encode()
                if not receiver.secret or not hmac.compare_digest(given, receiver.secret):
                    receiver.counters["unauthorized"] += 1
                    self._answer(HTTPStatus.UNAUTHORIZED, {"error": "bad secret token"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    receiver.counters["too_large"] += 1
                    self.close_connection = True
                    self._answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "body over 1 MiB"})
                    return
                body = self.rfile.read(length)
                try:
                    update = json.loads(body)
                    if not isinstance(update, dict):
                        raise ValueError("not an object")
                except ValueError:
                    receiver.counters["bad_json"] += 1
                    self._answer(HTTPStatus.BAD_REQUEST, {"error": "body is not a JSON object"})
                    return
                chat_id = chat_id_of(update)
                if receiver.allowed and chat_id is not None and chat_id not in receiver.allowed:
                    receiver.counters["dropped_chat_not_allowed"] += 1
                    self._answer(HTTPStatus.OK, {"ok": True, "landed": False})
                    return
                # Telegram sends compact JSON; a body with a raw newline is re-sent compact so
                # each segment line stays one record (its JSON value is unchanged).
                record = body if b"\n" not in body else json.dumps(
                    update, ensure_ascii=False, separators=(",", ":")).encode()
                receiver.writer.append(record)
                receiver.counters["landed"] += 1
                self._answer(HTTPStatus.OK, {"ok": True, "landed": True})

        return Handler
