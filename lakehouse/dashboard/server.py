"""The dashboard's HTTP server (stdlib): the page at ``/``, its data at ``/api/summary``."""

from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from lakehouse.dashboard.page import render_page
from lakehouse.dashboard.queries import read_summary
from lakehouse.lake.location import Lake

log = logging.getLogger("lakehouse.dashboard")


class DashboardServer(ThreadingHTTPServer):
    """Serves one lake's dashboard; ``port=0`` picks a free port (see ``.port``)."""

    daemon_threads = True

    def __init__(self, lake: Lake, host: str = "127.0.0.1", port: int = 0,
                 refresh_seconds: float = 5.0) -> None:
        self.lake = lake
        self.page = render_page(refresh_seconds).encode()
        super().__init__((host, port), _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        host = self.server_address[0]
        return f"http://{host}:{self.port}/"

    def start_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="dashboard", daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server: DashboardServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path, _, query = self.path.partition("?")
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", self.server.page)
        elif path == "/api/summary":
            try:
                lang = parse_qs(query).get("lang", [""])[0].strip()
                body: Any = read_summary(self.server.lake, lang or None)
                status = HTTPStatus.OK
            except Exception as exc:  # the page shows the reason and keeps polling
                log.exception("reading the gold tables failed")
                body, status = {"error": f"{type(exc).__name__}: {exc}"}, HTTPStatus.SERVICE_UNAVAILABLE
            self._send(status, "application/json", json.dumps(body).encode())
        elif path == "/healthz":
            self._send(HTTPStatus.OK, "text/plain", b"ok\n")
        else:
            self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        log.debug("%s " + format, self.address_string(), *args)
