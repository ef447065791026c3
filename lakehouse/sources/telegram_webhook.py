"""The webhook receiver: Telegram POSTs each Update here; we land it before answering 200.

Contract:

- 401 unless ``X-Telegram-Bot-Api-Secret-Token`` equals the configured secret (compared in
  constant time). 413 over 1 MiB (declared or sent). 400 for a body that is not UTF-8 JSON, not
  an object, nested deeper than ``MAX_NESTING``, or without an integer ``update_id`` (``true``
  and ``5.5`` are not integers), or whose fields are not objects (a ``callback_query.message``
  that is a string, say). 408 when the headers or the declared body do not arrive in
  time; malformed HTTP (``Content-Length: abc`` or ``-1``) gets 400 from the parser. Each such
  answer moves a counter (``GET /healthz`` JSON, ``GET /metrics`` in Prometheus text).
- Updates from chats outside the allow-list are answered 200 (so Telegram stops retrying) but
  not landed, and counted.
- 200 only after the body is fsynced into a spool segment. Bodies that arrive together are
  group-committed: one writer task drains the queue, lands the whole group with one write and
  one fsync in a worker thread, then resolves each request's future. Closing segments and
  uploading them to the landing zone happen in ``SegmentWriter``'s sealer thread, never in a
  request; while it cannot upload, ``/healthz`` answers 503 with the reason and the number of
  records still only in the spool.

Server choice: uvicorn, with its httptools (llhttp) parser and uvloop, serving this module's
plain ASGI callable (no framework). Why uvicorn rather than aiohttp: it is already in the lock
(dagster-webserver runs on it, with httptools and uvloop), so the webhook adds no dependency
and no second HTTP stack to keep patched; its C parser (llhttp) and C event loop keep the
per-request cost small on two cores; and it has the knobs needed here
(listen backlog, keep-alive timeout, ``limit_concurrency``, graceful shutdown on SIGTERM). What
it lacks (a deadline and a size cap for a request's head, a counter for the requests its parser
rejects) is a small subclass of its httptools protocol below. Measured with
``bench/webhook_load.py`` on the shared 2-core machine (load average 5-7), 32 keep-alive
clients: 2,800-3,500 acknowledged updates/s, p99 26-43 ms, no errors, about 10 updates per
fsync; the old ``http.server`` receiver, same run: 707/s, p99 1,033 ms, and 14/s with 27 errors
at 128 clients. uvloop over asyncio's own loop: 1.2-1.7x the updates/s.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakehouse.lake.location import Lake
from lakehouse.lake.segments import SegmentWriter
from lakehouse.sources.telegram_landing import webhook_key

MAX_BODY_BYTES = 1024 * 1024
MAX_HEAD_BYTES = 64 * 1024
# Telegram's updates nest about ten levels; deeper bodies are abuse and would reach the
# recursion limit of JSON decoders here and downstream.
MAX_NESTING = 128
MAX_UPDATE_ID = 2**63 - 1
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_LANDED = b'{"ok": true, "landed": true}'
LANDED_START = {"type": "http.response.start", "status": 200, "headers": [
    (b"content-type", b"application/json"), (b"content-length", str(len(_LANDED)).encode())]}
LANDED_BODY = {"type": "http.response.body", "body": _LANDED}
log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Rejected(Exception):
    """A request answered with a 4xx: ``counter`` names why (it is counted under that name)."""

    def __init__(self, status: int, counter: str, message: str, *, close: bool = False):
        super().__init__(message)
        self.status, self.counter, self.message, self.close = status, counter, message, close


def chat_id_of(update: dict) -> int | None:
    """The chat an update belongs to (``<kind>.chat.id`` or ``<kind>.message.chat.id``), or
    None; any shape of body is accepted, a non-dict ``message`` included."""
    for value in update.values():
        if not isinstance(value, dict):
            continue
        chat = value.get("chat")
        if not isinstance(chat, dict):
            message = value.get("message")
            chat = message.get("chat") if isinstance(message, dict) else None
        if isinstance(chat, dict):
            chat_id = chat.get("id")
            if isinstance(chat_id, int) and not isinstance(chat_id, bool):
                return chat_id
    return None


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _depth_over(value: object, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


def parse_update(body: bytes) -> tuple[dict, bytes]:
    """(the update, the line to land) for a body, or ``Rejected`` (400) saying why.

    The line is the body unchanged, unless it holds a raw CR or LF (whitespace between tokens):
    then it is the same JSON value re-sent compact, so each spool line stays one record.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(400, "bad_encoding", "body is not UTF-8") from None
    # Nesting needs brackets: most bodies are cleared by two C-speed counts.
    deep_possible = body.count(b"[") + body.count(b"{") > MAX_NESTING
    try:
        update = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        if deep_possible:
            raise Rejected(400, "too_deep", f"body is not JSON nested at most {MAX_NESTING} "
                                            "levels") from None
        raise Rejected(400, "bad_json", "body is not JSON") from None
    if not isinstance(update, dict):
        raise Rejected(400, "not_an_object", "body is not a JSON object")
    if deep_possible and _depth_over(update, MAX_NESTING):
        raise Rejected(400, "too_deep", f"body is nested deeper than {MAX_NESTING} levels")
    update_id = update.get("update_id")
    if type(update_id) is not int or not 0 <= update_id <= MAX_UPDATE_ID:
        raise Rejected(400, "bad_update_id", "update_id is not a non-negative 64-bit integer")
    for kind, value in update.items():
        # Every field of an Update but update_id is an object, and so are the chat and
        # message inside it: anything else is not from Telegram.
        if kind != "update_id" and not (
                isinstance(value, dict) and isinstance(value.get("chat", {}), dict)
                and isinstance(value.get("message", {}), dict)):
            raise Rejected(400, "bad_shape", f"{kind} is not a Telegram object")
    if b"\n" in body or b"\r" in body:
        body = json.dumps(update, ensure_ascii=False, separators=(",", ":")).encode()
    return update, body


class GroupCommitter:
    """Lands records for many concurrent requests with one write and one fsync per group."""

    def __init__(self, writer: SegmentWriter, max_group: int = 4096):
        self.writer = writer
        self.max_group = max_group
        self._pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # One thread: groups are written in order, and the event loop never blocks on fsync.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool-fsync")

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="group-commit")

    async def commit(self, record: bytes) -> None:
        """Return once ``record`` is fsynced; raise what the spool raised otherwise."""
        if self._stopping or self._task is None or self._task.done():
            raise RuntimeError("the receiver is stopping")
        future = asyncio.get_running_loop().create_future()
        self._pending.append((record, future))
        self._ready.set()
        await future

    async def stop(self) -> None:
        self._stopping = True
        self._ready.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._pending:
                group, self._pending = (self._pending[: self.max_group],
                                        self._pending[self.max_group:])
                try:
                    await loop.run_in_executor(self._executor, self.writer.append_many,
                                               [record for record, _ in group])
                except Exception as exc:  # the spool failed: nobody in this group is acknowledged
                    log.error("spool write failed (%s): %d update(s) answered 503",
                              type(exc).__name__, len(group))
                    for _, future in group:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in group:
                        if not future.done():
                            future.set_result(None)
            if self._stopping:
                return


@dataclass(frozen=True)
class Limits:
    """Server limits; the defaults suit Telegram (at most 100 connections per bot)."""

    max_connections: int = 512  # beyond it uvicorn answers 503 (Telegram retries)
    backlog: int = 1024
    keep_alive_seconds: int = 30  # idle keep-alive connections are closed after this
    head_seconds: float = 10.0  # a request's head (line + headers) must arrive within this
    body_seconds: float = 10.0  # and its declared body within this
    shutdown_seconds: float = 10.0  # SIGTERM: wait this long for in-flight requests, then the seal


class WebhookApp:
    """The ASGI application: routes, checks, group commit, health and metrics."""

    def __init__(self, writer: SegmentWriter, secret: str | None,
                 allowed_chat_ids: frozenset[int] = frozenset(), *,
                 path: str = "/telegram/webhook", limits: Limits = Limits()):
        self.writer = writer
        self.secret = (secret or "").encode()
        self.allowed = allowed_chat_ids
        self.path = path
        self.limits = limits
        self.counters: Counter[str] = Counter()
        self.committer = GroupCommitter(writer)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    def reject(self, counter: str) -> None:
        self.counters[counter] += 1
        self.counters["rejected"] += 1

    # -- lifespan -----------------------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.committer.start()
                self.writer.start_sealer()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.committer.stop()
                left = await asyncio.get_running_loop().run_in_executor(
                    None, self.writer.close, self.limits.shutdown_seconds)
                if not left.unsealed_records:
                    log.info("stopped: every acknowledged update is in the landing zone")
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- HTTP ---------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        if path == "/healthz" and method in ("GET", "HEAD"):
            await self._healthz(send)
            return
        if path == "/metrics" and method in ("GET", "HEAD"):
            await _answer(send, 200, self.metrics().encode(), b"text/plain; version=0.0.4")
            return
        try:
            if path != self.path:
                raise Rejected(404, "not_found", "not found")
            if method != "POST":
                raise Rejected(405, "method_not_allowed", "only POST")
            given, length = b"", None
            for name, value in scope["headers"]:
                if name == b"x-telegram-bot-api-secret-token":
                    given = value
                elif name == b"content-length":
                    length = int(value)  # the parser has checked it is a number
            if not self.secret or not hmac.compare_digest(given, self.secret):
                raise Rejected(401, "unauthorized", "bad secret token")
            if length is not None and length > MAX_BODY_BYTES:
                raise Rejected(413, "too_large", "body over 1 MiB", close=True)
            body = await self._read_body(receive)
            update, record = parse_update(body)
        except Rejected as exc:
            self.reject(exc.counter)
            await _answer_json(send, exc.status, {"error": exc.message}, close=exc.close)
            return
        chat_id = chat_id_of(update)
        if self.allowed and chat_id is not None and chat_id not in self.allowed:
            self.counters["dropped_chat_not_allowed"] += 1
            await _answer_json(send, 200, {"ok": True, "landed": False})
            return
        try:
            await self.committer.commit(record)
        except Exception:
            self.counters["spool_errors"] += 1
            await _answer_json(send, 503, {"error": "could not land the update; retry"})
            return
        self.counters["landed"] += 1
        await send(LANDED_START)
        await send(LANDED_BODY)

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            # asyncio.timeout, not wait_for: no extra task per request
            async with asyncio.timeout(self.limits.body_seconds):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise Rejected(400, "disconnected", "client went away", close=True)
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:
                        raise Rejected(413, "too_large", "body over 1 MiB", close=True)
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            raise Rejected(408, "body_timeout", "body shorter than declared or too slow",
                           close=True) from None

    async def _healthz(self, send: Send) -> None:
        health = self.writer.health()
        payload = {"status": "ok" if health.ok else "unsealed",
                   "unsealed_records": health.unsealed_records,
                   "unsealed_segments": health.unsealed_segments,
                   "fsyncs": self.writer.fsyncs,
                   **({"reason": health.reason} if health.reason else {}),
                   **self.counters}
        await _answer_json(send, 200 if health.ok else 503, payload)

    def metrics(self) -> str:
        health = self.writer.health()
        lines = ["# TYPE telegram_webhook_requests_total counter"]
        lines += [f'telegram_webhook_requests_total{{outcome="{name}"}} {count}'
                  for name, count in sorted(self.counters.items())]
        lines += ["# TYPE telegram_webhook_unsealed_records gauge",
                  f"telegram_webhook_unsealed_records {health.unsealed_records}",
                  "# TYPE telegram_webhook_fsyncs_total counter",
                  f"telegram_webhook_fsyncs_total {self.writer.fsyncs}",
                  "# TYPE telegram_webhook_sealer_ok gauge",
                  f"telegram_webhook_sealer_ok {int(health.ok)}"]
        return "\n".join(lines) + "\n"


async def _answer(send: Send, status: int, body: bytes, content_type: bytes, *,
                  close: bool = False) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _answer_json(send: Send, status: int, payload: dict, *, close: bool = False) -> None:
    await _answer(send, status, json.dumps(payload).encode(), b"application/json", close=close)


def protocol_class(app: WebhookApp) -> type:
    """uvicorn's httptools protocol plus what the webhook needs from it: a deadline and a size
    cap for each request's head, and the parser's 400s counted with the app's other rejects."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    head_seconds = app.limits.head_seconds

    class WebhookProtocol(HttpToolsProtocol):
        _head_timer: asyncio.TimerHandle | None = None
        _head_bytes = 0
        _in_head = True

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_head_timer()  # uvicorn has no deadline for a silent new connection

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._in_head:
                end = data.find(b"\r\n\r\n")
                self._head_bytes += len(data) if end < 0 else end
                if self._head_bytes > MAX_HEAD_BYTES:
                    self._fail(431, "head_too_large", b"request head over 64 KiB")
                    return
            super().data_received(data)

        def on_message_begin(self) -> None:
            self._in_head = True
            self._arm_head_timer()  # a request began: its head has head_seconds to arrive
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._head_bytes = 0
            self._cancel_head_timer()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            # Between requests uvicorn's keep-alive timeout closes an idle connection.
            super().on_response_complete()
            self._in_head = True

        def send_400_response(self, msg: str) -> None:
            app.reject("bad_http")
            super().send_400_response(msg)

        def _arm_head_timer(self) -> None:
            self._cancel_head_timer()
            self._head_timer = self.loop.call_later(head_seconds, self._head_timeout)

        def _cancel_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timeout(self) -> None:
            self._head_timer = None
            if self.transport.is_closing() or not self._in_head:
                return
            if self._head_bytes:  # a request began and stalled: say so
                self._fail(408, "head_timeout", b"request head too slow")
            else:  # an idle connection: just close it
                self.transport.close()

        def _fail(self, status: int, counter: str, message: bytes) -> None:
            app.reject(counter)
            reason = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}[status]
            self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\n"
                                 b"content-length: %d\r\nconnection: close\r\n\r\n%s"
                                 % (status, reason, len(message), message))
            self.transport.close()

    return WebhookProtocol


class WebhookReceiver:
    """The uvicorn server, the ASGI app and the segment writer behind it."""

    def __init__(self, lake: Lake, spool_dir: Path, secret: str | None,
                 allowed_chat_ids: frozenset[int] = frozenset(), *, host: str = "127.0.0.1",
                 port: int = 8443, path: str = "/telegram/webhook",
                 max_segment_bytes: int = 64 * 1024 * 1024, max_segment_age: float = 300.0,
                 limits: Limits = Limits()):
        import uvicorn

        if not secret:
            log.warning("TELEGRAM_WEBHOOK_SECRET is not set: every POST will be refused (401)")
        self.writer = SegmentWriter(lake, spool_dir, webhook_key, max_bytes=max_segment_bytes,
                                    max_age=max_segment_age)
        self.app = WebhookApp(self.writer, secret, allowed_chat_ids, path=path, limits=limits)
        self.port = port
        config = uvicorn.Config(
            self.app, host=host, port=port, loop="uvloop", http=protocol_class(self.app),
            lifespan="on", access_log=False, log_config=None, proxy_headers=False,
            server_header=False, backlog=limits.backlog,
            limit_concurrency=limits.max_connections,
            timeout_keep_alive=limits.keep_alive_seconds,
            timeout_graceful_shutdown=max(1, int(limits.shutdown_seconds)))
        self.server = uvicorn.Server(config)

    @property
    def counters(self) -> Counter[str]:
        return self.app.counters

    def serve_forever(self) -> None:
        """Serve until SIGTERM or Ctrl-C; then finish in-flight requests and seal (bounded)."""
        # The process holds some hundred MB of imported modules (Dagster, Polars, DuckDB):
        # freezing them out of the garbage collector keeps its full passes, which walk every
        # tracked object, from adding tens of milliseconds to a request now and then.
        gc.collect()
        gc.freeze()
        self.server.run()
