"""IMDB datasets (datasets.imdbws.com): streamed conditional downloads, and the sample backend.

A download streams to a local file in 1 MiB chunks (never whole in memory), hashing as it goes,
and sends ``If-None-Match`` / ``If-Modified-Since`` from the last landed version: a ``304`` (or
the same sha256 from a server that ignores them) means unchanged, and nothing is landed.

``conditional_download`` is shared with the MovieLens client.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import dagster as dg
import requests
from pydantic import Field

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


def _hash_to_file(chunks, dest: Path, what: str, progress: Progress | None,
                  total: int | None) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    next_report = PROGRESS_EVERY
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as out:
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
    return digest.hexdigest(), size


def conditional_download(session: requests.Session, url: str, dest: Path, previous: Previous, *,
                         what: str, progress: Progress | None = None) -> Download:
    """GET ``url`` into ``dest`` unless the server says (or the bytes show) it is unchanged."""
    headers = {}
    if previous.etag:
        headers["If-None-Match"] = previous.etag
    if previous.last_modified:
        headers["If-Modified-Since"] = previous.last_modified
    response = send(session, "GET", url, what=what, headers=headers, stream=True,
                    ok_statuses=(304,))
    with response:
        if response.status_code == 304:
            if progress:
                progress(f"{what}: not modified (HTTP 304)")
            return Download(False, None, previous.etag, previous.last_modified, previous.sha256,
                            status=304)
        total = int(response.headers.get("Content-Length") or 0) or None
        try:
            sha, size = _hash_to_file(response.iter_content(CHUNK), dest, what, progress, total)
        except requests.RequestException as exc:
            raise ApiError(f"{what} failed while streaming {url}: {type(exc).__name__}") from None
    if total is not None and size != total:
        raise ApiError(f"{what}: got {size} bytes of {total} from {url}")
    etag = response.headers.get("ETag")
    modified = response.headers.get("Last-Modified")
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
                 retries: int = 5, backoff: float = 0.5):
        self.base_url = base_url.rstrip("/")
        self._session = build_session(retries=retries, backoff=backoff, timeout=timeout)

    def fetch(self, name: str, dest: Path, previous: Previous,
              progress: Progress | None = None) -> Download:
        return conditional_download(self._session, f"{self.base_url}/{name}", dest, previous,
                                    what=f"IMDB {name}", progress=progress)


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


class ImdbResource(dg.ConfigurableResource):
    """IMDB datasets: over HTTP when ``IMDB_DATASETS_BASE_URL`` (or ``base_url``) is set or
    ``use_sample`` is false, else the sample datasets (runs offline)."""

    base_url: str | None = Field(default=None, description="Default: $IMDB_DATASETS_BASE_URL.")
    use_sample: bool | None = Field(
        default=None, description="Default: sample unless $IMDB_DATASETS_BASE_URL is set or "
        "$LAKEHOUSE_MOVIES_SAMPLE=0.")
    sample_version: int = Field(default=1, description="Release of the sample datasets.")

    def _base(self) -> str | None:
        return self.base_url or os.environ.get("IMDB_DATASETS_BASE_URL") or None

    @property
    def is_sample(self) -> bool:
        if self.use_sample is not None:
            return self.use_sample
        if self._base():
            return False
        return os.environ.get("LAKEHOUSE_MOVIES_SAMPLE", "1") != "0"

    def source(self) -> FileSource:
        if self.is_sample:
            return SampleImdb(self.sample_version)
        return ImdbClient(self._base() or DEFAULT_IMDB_BASE_URL)
