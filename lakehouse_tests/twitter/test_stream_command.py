"""`lakehouse twitter stream` as a process: batches flushed by size, and on SIGTERM."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from lakehouse.lake.location import Lake

FIXTURES = Path(__file__).parents[1] / "fixtures" / "twitter"
LINES = [line for line in (FIXTURES / "stream.ndjson").read_bytes().split(b"\r\n") if line]


def slow_stream(_request: Request) -> Response:
    def body():
        for n in range(400):  # bounded: about 20 s at most
            yield LINES[n % len(LINES)] + b"\r\n"
            if n % 4 == 3:
                yield b"\r\n"  # keep-alive
            time.sleep(0.05)
    return Response(body(), status=200, content_type="application/json")


def spool_lines(spool: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in spool.glob("*.open"))


def test_sigterm_flushes_the_open_batch_and_size_flushes_before(
        httpserver: HTTPServer, lake: Lake, tmp_path: Path) -> None:
    httpserver.expect_request("/2/tweets/sample/stream").respond_with_handler(slow_stream)
    spool = tmp_path / "spool"
    env = {**os.environ, "LAKEHOUSE_ROOT": lake.root, "TWITTER_BEARER_TOKEN": "test-token",
           "TWITTER_API_BASE_URL": httpserver.url_for("/").rstrip("/")}
    max_bytes = 3 * max(len(line) for line in LINES)  # a batch every 3 tweets or so
    proc = subprocess.Popen(
        [sys.executable, "-m", "lakehouse.cli", "twitter", "stream", "--spool", str(spool),
         "--max-bytes", str(max_bytes), "--max-age", "3600"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
                len(lake.list_keys("raw/twitter/stream")) >= 2 and spool_lines(spool) >= 1):
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert "signal 15" in output
    keys = lake.list_keys("raw/twitter/stream")
    landed = [line for k in keys for line in lake.read_bytes(k).split(b"\n") if line]
    assert len(keys) >= 3  # at least two by size, then the open one on SIGTERM
    assert landed == [LINES[n % len(LINES)] for n in range(len(landed))]  # in order, no gaps
    assert not list(spool.glob("*.open"))  # nothing left behind
    assert b"test-token" not in output.encode()
