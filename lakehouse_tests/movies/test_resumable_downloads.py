"""Interrupted IMDB and MovieLens downloads, against a local file server that drops the
connection in the middle of the body: with range support the next attempt asks only for the
rest (``Range: bytes=N-``, ``If-Range``), without it (or when the file changed) it restarts
from byte 0; the landed file is byte-identical either way."""

import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lakehouse.sources.http import ApiError
from lakehouse.sources.imdb import ImdbClient, Partial, Previous
from lakehouse.sources.movielens import MovieLensClient
from lakehouse.sources.movies_sample import movielens_zip

ETAG = '"title-basics-v1"'
MODIFIED = "Sun, 22 Nov 2026 10:00:00 GMT"


class FileServer:
    """A static file server on 127.0.0.1: ``files`` path -> (bytes, ETag); the first
    ``drops`` answers to a path stop after ``drop_at`` bytes of the body and close the socket."""

    def __init__(self, ranges: bool) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.ranges = ranges
        self.drops: dict[str, int] = {}
        self.drop_at = 0
        self.requests: list[tuple[str, dict[str, str]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                owner.requests.append((self.path, dict(self.headers)))
                if self.path not in owner.files:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body, etag = owner.files[self.path]
                start, status = 0, 200
                wanted = self.headers.get("Range", "")
                if_range = self.headers.get("If-Range")
                if (owner.ranges and wanted.startswith("bytes=")
                        and (if_range is None or if_range in (etag, MODIFIED))):
                    start, status = int(wanted[6:].split("-")[0]), 206
                self.send_response(status)
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", MODIFIED)
                if owner.ranges:
                    self.send_header("Accept-Ranges", "bytes")
                if status == 206:
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                payload = body[start:]
                if owner.drops.get(self.path, 0) > 0:
                    owner.drops[self.path] -= 1
                    self.wfile.write(payload[:owner.drop_at])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)  # the connection drops mid-body
                    return
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def ranges_asked(self, path: str) -> list[str | None]:
        return [headers.get("Range") for p, headers in self.requests if p == path]


@pytest.fixture
def file_server(request: pytest.FixtureRequest) -> Iterator[FileServer]:
    server = FileServer(ranges=request.param)
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(timeout=10)


def dump(size: int, seed: bytes = b"imdb") -> bytes:
    """Incompressible bytes, like a gzip dump."""
    out, block = bytearray(), seed
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


@pytest.mark.parametrize("file_server", [True], indirect=True)
def test_a_dropped_imdb_download_resumes_with_a_range_request(
        file_server: FileServer, tmp_path: Path) -> None:
    body = dump(3_000_000)
    file_server.files["/title.principals.tsv.gz"] = (body, ETAG)
    file_server.drops["/title.principals.tsv.gz"], file_server.drop_at = 1, 1_234_567
    lines: list[str] = []
    client = ImdbClient(file_server.url, retries=0, partial_dir=tmp_path / "spool")
    got = client.fetch("title.principals.tsv.gz", tmp_path / "out.gz", Previous(), lines.append)
    assert got.changed and got.path.read_bytes() == body
    assert got.sha256 == hashlib.sha256(body).hexdigest() and got.size == len(body)
    assert file_server.ranges_asked("/title.principals.tsv.gz") == [None, "bytes=1234567-"]
    assert [h.get("If-Range") for _, h in file_server.requests] == [None, ETAG]
    assert any("resuming at byte 1234567 (HTTP 206)" in line for line in lines)
    # Nothing left behind but the (empty) lock file.
    assert [f for f in os.listdir(tmp_path / "spool") if not f.endswith(".lock")] == []


@pytest.mark.parametrize("file_server", [True], indirect=True)
def test_a_new_run_resumes_the_partial_file_an_earlier_process_left(
        file_server: FileServer, tmp_path: Path) -> None:
    body = dump(2_000_000)
    file_server.files["/title.basics.tsv.gz"] = (body, ETAG)
    file_server.drops["/title.basics.tsv.gz"], file_server.drop_at = 1, 700_000
    spool = tmp_path / "spool"
    with pytest.raises(ApiError, match="700000 bytes kept to resume"):
        ImdbClient(file_server.url, retries=0, partial_dir=spool, attempts=1).fetch(
            "title.basics.tsv.gz", tmp_path / "a.gz", Previous())
    assert Partial(spool, f"{file_server.url}/title.basics.tsv.gz").size() == 700_000
    # A new client (a later run) finds the partial file and asks for the rest only.
    got = ImdbClient(file_server.url, retries=0, partial_dir=spool).fetch(
        "title.basics.tsv.gz", tmp_path / "b.gz", Previous())
    assert got.path.read_bytes() == body
    assert file_server.ranges_asked("/title.basics.tsv.gz") == [None, "bytes=700000-"]


@pytest.mark.parametrize("file_server", [True], indirect=True)
def test_a_file_changed_since_the_partial_download_restarts_from_byte_0(
        file_server: FileServer, tmp_path: Path) -> None:
    old, new = dump(1_000_000, b"v1"), dump(1_100_000, b"v2")
    file_server.files["/title.ratings.tsv.gz"] = (old, ETAG)
    file_server.drops["/title.ratings.tsv.gz"], file_server.drop_at = 1, 400_000
    spool = tmp_path / "spool"
    with pytest.raises(ApiError):
        ImdbClient(file_server.url, retries=0, partial_dir=spool, attempts=1).fetch(
            "title.ratings.tsv.gz", tmp_path / "a.gz", Previous())
    file_server.files["/title.ratings.tsv.gz"] = (new, '"title-ratings-v2"')
    got = ImdbClient(file_server.url, retries=0, partial_dir=spool).fetch(
        "title.ratings.tsv.gz", tmp_path / "b.gz", Previous())
    # If-Range named the old version: the server sent the new file whole, from byte 0.
    assert got.path.read_bytes() == new and got.etag == '"title-ratings-v2"'
    assert file_server.requests[-1][1]["If-Range"] == ETAG and got.status == 200


@pytest.mark.parametrize("file_server", [False], indirect=True)
def test_without_range_support_the_download_restarts_cleanly(
        file_server: FileServer, tmp_path: Path) -> None:
    body = dump(1_500_000)
    file_server.files["/name.basics.tsv.gz"] = (body, ETAG)
    file_server.drops["/name.basics.tsv.gz"], file_server.drop_at = 1, 600_000
    lines: list[str] = []
    got = ImdbClient(file_server.url, retries=0, partial_dir=tmp_path / "spool").fetch(
        "name.basics.tsv.gz", tmp_path / "out.gz", Previous(), lines.append)
    assert got.path.read_bytes() == body and got.size == len(body)
    assert file_server.ranges_asked("/name.basics.tsv.gz") == [None, "bytes=600000-"]
    assert any("restarting from byte 0" in line for line in lines)


@pytest.mark.parametrize("file_server", [True, False], indirect=True)
def test_a_dropped_movielens_zip_resumes_and_still_matches_its_md5(
        file_server: FileServer, tmp_path: Path) -> None:
    body = movielens_zip()
    file_server.files["/ml-latest-small.zip"] = (body, '"ml"')
    file_server.files["/ml-latest-small.zip.md5"] = (
        f"{hashlib.md5(body).hexdigest()}  ml-latest-small.zip\n".encode(), '"md5"')
    file_server.drops["/ml-latest-small.zip"], file_server.drop_at = 2, len(body) // 3
    lines: list[str] = []
    client = MovieLensClient(f"{file_server.url}/ml-latest-small.zip", retries=0,
                             partial_dir=tmp_path / "spool")
    got = client.fetch("ml-latest-small.zip", tmp_path / "ml.zip", Previous(), lines.append)
    assert got.path.read_bytes() == body
    assert any("md5 matches the published checksum" in line for line in lines)
    third = len(body) // 3
    expected = ([None, f"bytes={third}-", f"bytes={2 * third}-"] if file_server.ranges
                else [None, f"bytes={third}-", f"bytes={third}-"])
    assert file_server.ranges_asked("/ml-latest-small.zip") == expected


@pytest.mark.parametrize("file_server", [True], indirect=True)
def test_a_second_download_of_the_same_file_at_once_is_refused(
        file_server: FileServer, tmp_path: Path) -> None:
    file_server.files["/title.crew.tsv.gz"] = (dump(1000), ETAG)
    spool = tmp_path / "spool"
    partial = Partial(spool, f"{file_server.url}/title.crew.tsv.gz")
    spool.mkdir()
    with open(partial.lock_path, "a") as held:  # another run is downloading it
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(ApiError, match="another process is downloading"):
            ImdbClient(file_server.url, retries=0, partial_dir=spool).fetch(
                "title.crew.tsv.gz", tmp_path / "a.gz", Previous())
    assert file_server.requests == []
    got = ImdbClient(file_server.url, retries=0, partial_dir=spool).fetch(
        "title.crew.tsv.gz", tmp_path / "b.gz", Previous())
    assert got.path.read_bytes() == dump(1000)
