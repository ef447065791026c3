"""IMDB datasets (datasets.imdbws.com): streamed conditional downloads, and the sample backend.

A download streams to a local file in 1 MiB chunks (never whole in memory), hashing as it goes,
and sends ``If-None-Match`` / ``If-Modified-Since`` from the last landed version: a ``304`` (or
the same sha256 from a server that ignores them) means unchanged, and nothing is landed.

An interrupted download resumes: the bytes so far stay in a partial file under
``$LAKEHOUSE_DOWNLOAD_DIR`` (kept across runs), and the next attempt asks for the rest with an
HTTP ``Range`` request guarded by ``If-Range``; a server without range support, or a file that
changed meanwhile, answers 200 and the download restarts from byte 0.

``conditional_download`` is shared with the MovieLens client.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import dagster as dg
import requests
import urllib3
from pydantic import Field

from lakehouse import settings
from lakehouse.sources.http import ApiError, build_session, send
from lakehouse.sources.movies_sample import IMDB_DATASETS, imdb_gz

DEFAULT_IMDB_BASE_URL = "https://datasets.imdbws.com"
CHUNK = 1 << 20
PROGRESS_EVERY = 64 << 20  # log a line every 64 MiB

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Previous:
    """What we know of the last landed version of a file (from its landing state)."""

    etag: str | None = None
    last_modified: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Download:
    """The outcome of one conditional download. ``changed`` False: nothing new was written."""

    changed: bool
    path: Path | None
    etag: str | None = None
    last_modified: str | None = None
    sha256: str | None = None
    size: int = 0
    status: int = 200


@dataclass(frozen=True)
class Partial:
    """A partial download of ``url``: the bytes so far (``.part``) and the validators of the
    version they belong to (``.json``), so a later attempt asks only for the rest of *that*
    version (``Range`` + ``If-Range``)."""

    folder: Path
    url: str

    @property
    def _stem(self) -> Path:
        name = hashlib.sha256(self.url.encode()).hexdigest()[:24]
        return self.folder / name

    @property
    def path(self) -> Path:
        return self._stem.with_suffix(".part")

    @property
    def meta_path(self) -> Path:
        return self._stem.with_suffix(".json")

    @property
    def lock_path(self) -> Path:
        return self._stem.with_suffix(".lock")

    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def validator(self) -> str | None:
        """The version's ETag (a strong one) or Last-Modified, for ``If-Range``."""
        try:
            meta = json.loads(self.meta_path.read_text())
        except (OSError, ValueError):
            return None
        etag = meta.get("etag")
        if etag and not etag.startswith("W/"):  # If-Range takes strong validators only
            return etag
        return meta.get("last_modified")

    def start(self, etag: str | None, last_modified: str | None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path.write_bytes(b"")
        self.meta_path.write_text(json.dumps({"url": self.url, "etag": etag,
                                              "last_modified": last_modified}))

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
        self.meta_path.unlink(missing_ok=True)


def _sha256_of(path: Path) -> hashlib._Hash:
    digest = hashlib.sha256()
    with open(path, "rb") as src:
        for chunk in iter(lambda: src.read(CHUNK), b""):
            digest.update(chunk)
    return digest


def _append(chunks, partial: Partial, digest, size: int, what: str,
            progress: Progress | None, total: int | None) -> int:
    next_report = (size // PROGRESS_EVERY + 1) * PROGRESS_EVERY
    with open(partial.path, "ab") as out:
        try:
            for chunk in chunks:
                if not chunk:
                    continue
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                if progress and size >= next_report:
                    of = f" of {total / 2**20:.0f} MiB" if total else ""
                    progress(f"{what}: {size / 2**20:.0f} MiB{of} downloaded")
                    next_report += PROGRESS_EVERY
        finally:
            # What arrived before a dropped connection is kept for the next attempt.
            out.flush()
            os.fsync(out.fileno())
    return size


def _body(response: requests.Response) -> Iterator[bytes]:
    """The body as sent (no Content-Encoding decoding: Range offsets and Content-Length count
    these bytes), handed on as it arrives, so a dropped connection loses none of what came."""
    while chunk := response.raw.read1(CHUNK, decode_content=False):
        yield chunk


def _content_range(value: str | None) -> tuple[int, int | None] | None:
    """``bytes 100-199/200`` -> (100, 200); None when absent or malformed."""
    found = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*", value or "")
    if not found:
        return None
    return int(found.group(1)), None if found.group(2) == "*" else int(found.group(2))


def conditional_download(session: requests.Session, url: str, dest: Path, previous: Previous, *,
                         what: str, progress: Progress | None = None,
                         partial_dir: Path | None = None, attempts: int = 3) -> Download:
    """GET ``url`` into ``dest`` unless the server says (or the bytes show) it is unchanged.

    The bytes go first to a partial file in ``partial_dir`` (default ``download_dir()``). When
    the connection drops, the next attempt (in this call, or a later run) asks for the rest
    with ``Range: bytes=N-`` and ``If-Range`` (the version's ETag or Last-Modified): a 206 is
    appended, a 200 (no range support, or the file changed meanwhile) restarts from byte 0.
    """
    partial = Partial(partial_dir or settings.download_dir(), url)
    partial.folder.mkdir(parents=True, exist_ok=True)
    with open(partial.lock_path, "a") as lock:
        try:
            # Two runs appending to one partial file would land a corrupt file.
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ApiError(f"{what}: another process is downloading {url} right now "
                           f"(into {partial.path}); try again when it is done") from None
        for attempt in range(1, attempts + 1):
            try:
                return _download_once(session, url, dest, previous, partial, what, progress)
            except _Dropped as exc:
                if attempt == attempts:
                    raise ApiError(f"{what} failed while streaming {url}: {exc}; "
                                   f"{partial.size()} bytes kept to resume") from None
                if progress:
                    progress(f"{what}: {exc}; resuming at byte {partial.size()}")
    raise AssertionError("unreachable")


class _Dropped(Exception):
    """The body stopped before its end (connection dropped): resumable."""


def _download_once(session: requests.Session, url: str, dest: Path, previous: Previous,
                   partial: Partial, what: str, progress: Progress | None) -> Download:
    headers = {}
    if previous.etag:
        headers["If-None-Match"] = previous.etag
    if previous.last_modified:
        headers["If-Modified-Since"] = previous.last_modified
    have, validator = partial.size(), partial.validator()
    if have and validator:
        headers["Range"] = f"bytes={have}-"
        headers["If-Range"] = validator
    response = send(session, "GET", url, what=what, headers=headers, stream=True,
                    ok_statuses=(304, 416))
    with response:
        if response.status_code == 304:
            if progress:
                progress(f"{what}: not modified (HTTP 304)")
            return Download(False, None, previous.etag, previous.last_modified, previous.sha256,
                            status=304)
        etag = response.headers.get("ETag")
        modified = response.headers.get("Last-Modified")
        span = _content_range(response.headers.get("Content-Range"))
        if response.status_code == 416 or (response.status_code == 206
                                            and (span is None or span[0] != have)):
            partial.discard()  # the kept bytes do not fit this version: start again
            raise _Dropped(f"HTTP {response.status_code} to a range request")
        if response.status_code == 206 and span is not None:
            if progress:
                progress(f"{what}: resuming at byte {have} (HTTP 206)")
            digest, size, total = _sha256_of(partial.path), have, span[1]
        else:
            if have and progress:
                progress(f"{what}: the server sent the whole file (HTTP {response.status_code}); "
                         "restarting from byte 0")
            partial.start(etag, modified)
            digest, size = hashlib.sha256(), 0
            total = int(response.headers.get("Content-Length") or 0) or None
        try:
            size = _append(_body(response), partial, digest, size, what, progress, total)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise _Dropped(f"{type(exc).__name__} at byte {partial.size()}") from None
    if total is not None and size < total:
        raise _Dropped(f"got {size} bytes of {total}")
    if total is not None and size != total:
        partial.discard()
        raise ApiError(f"{what}: got {size} bytes of {total} from {url}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(partial.path, dest)
    partial.discard()
    sha = digest.hexdigest()
    changed = sha != previous.sha256
    if progress:
        progress(f"{what}: {size / 2**20:.1f} MiB, sha256 {sha[:12]}"
                 f"{'' if changed else ' (same bytes as the last version)'}")
    return Download(changed, dest, etag, modified, sha, size, response.status_code)


class FileSource(Protocol):
    """Anything that can fetch a named snapshot file: the HTTP client or a sample backend."""

    def fetch(self, name: str, dest: Path, previous: Previous,
              progress: Progress | None = None) -> Download: ...


class ImdbClient:
    """``<base>/<dataset>.tsv.gz`` over HTTP (``IMDB_DATASETS_BASE_URL``)."""

    def __init__(self, base_url: str = DEFAULT_IMDB_BASE_URL, *, timeout: float = 60.0,
                 retries: int = 5, backoff: float = 0.5, partial_dir: Path | None = None,
                 attempts: int = 3):
        self.base_url = base_url.rstrip("/")
        self._session = build_session(retries=retries, backoff=backoff, timeout=timeout)
        self._partial_dir = partial_dir
        self._attempts = attempts

    def fetch(self, name: str, dest: Path, previous: Previous,
              progress: Progress | None = None) -> Download:
        return conditional_download(self._session, f"{self.base_url}/{name}", dest, previous,
                                    what=f"IMDB {name}", progress=progress,
                                    partial_dir=self._partial_dir, attempts=self._attempts)


def sample_fetch(data: bytes, dest: Path, previous: Previous, what: str,
                 progress: Progress | None = None) -> Download:
    """A sample backend's answer, with an ETag derived from the bytes like a web server."""
    sha = hashlib.sha256(data).hexdigest()
    etag = f'"{sha[:16]}"'
    if previous.etag == etag or previous.sha256 == sha:
        if progress:
            progress(f"{what}: not modified (sample)")
        return Download(False, None, etag, None, sha, status=304)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    if progress:
        progress(f"{what}: {len(data)} bytes (sample)")
    return Download(True, dest, etag, None, sha, len(data))


class SampleImdb:
    """The sample IMDB datasets; ``version`` 2 is a new release with changed ratings."""

    def __init__(self, version: int = 1):
        self.version = version

    def fetch(self, name: str, dest: Path, previous: Previous,
              progress: Progress | None = None) -> Download:
        dataset = name.removesuffix(".tsv.gz")
        if dataset not in IMDB_DATASETS:
            raise ApiError(f"IMDB {name} failed: unknown dataset", status=404)
        return sample_fetch(imdb_gz(dataset, self.version), dest, previous, f"IMDB {name}",
                            progress)


# The resource's fields and the variables that set them (``lakehouse.settings.env_fields``).
IMDB_ENV = {"base_url": "IMDB_DATASETS_BASE_URL"}


class ImdbResource(dg.ConfigurableResource):
    """IMDB datasets: over HTTP when ``base_url`` is set or ``use_sample`` is false, else the
    sample datasets (runs offline)."""

    base_url: str | None = Field(default=None, description="IMDB_DATASETS_BASE_URL.")
    use_sample: bool | None = Field(
        default=None, description="False when LAKEHOUSE_MOVIES_SAMPLE=0; unset: the sample "
        "unless base_url is set.")
    sample_version: int = Field(default=1, description="Release of the sample datasets.")

    def _base(self) -> str | None:
        return self.base_url or None

    @property
    def is_sample(self) -> bool:
        if self.use_sample is not None:
            return self.use_sample
        return not self._base()

    def source(self) -> FileSource:
        if self.is_sample:
            return SampleImdb(self.sample_version)
        return ImdbClient(self._base() or DEFAULT_IMDB_BASE_URL)
