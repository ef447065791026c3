"""TMDB API v3: the client, a bounded parallel fan-out, and the raw-file grouping rules.

- Credentials (``TMDB_API_KEY``): a v3 API key goes in the ``api_key`` query parameter, a v4
  read access token (a JWT, ``eyJ...``) in ``Authorization: Bearer``. Either is a
  ``lakehouse.secrets.Secret``: redacted from errors, logs, reprs and the error bodies kept as
  records.
- ``fetch_all`` runs requests through a bounded thread pool (the movie data lake this replaces
  used Lambda + SQS) behind one token bucket shared by the pool; a 429 pauses every worker for its
  ``Retry-After`` (``http.send``); 404 (an unknown id) is recorded as a record, not raised.
- Each answer is kept as received inside an envelope naming the request, since a ``/find``
  answer does not say which IMDB id was asked: ``{"request": ..., "status": ..., "fetched_at":
  ..., "response": <the body, bytes unchanged>}``.
- ``group_records``: JSON array files of at most 100 records and 10 MB (the raw-zone rule
  of the movies-and-series challenge), one
  structure per file (the caller groups by endpoint; 404s go to their own ``not_found`` files).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlencode

import dagster as dg
from pydantic import Field

from lakehouse.secrets import Secret, redact_bytes, register
from lakehouse.sources.http import RateLimiter, build_session, send
from lakehouse.sources.movies_sample import SampleTmdbApi

DEFAULT_TMDB_BASE_URL = "https://api.themoviedb.org/3"
MAX_RECORDS_PER_FILE = 100
MAX_BYTES_PER_FILE = 10 * 1024 * 1024
ACTION, ADVENTURE = 28, 12


class TmdbApi(Protocol):
    def get(self, path: str, params: dict[str, Any] | None = None) -> tuple[int, bytes]: ...


def is_v4_token(credential: str) -> bool:
    return credential.startswith("eyJ") and credential.count(".") == 2


class TmdbClient:
    """GET calls to TMDB v3 (``TMDB_API_BASE_URL``), thread-safe, rate-limited."""

    def __init__(self, credential: str, base_url: str = DEFAULT_TMDB_BASE_URL, *,
                 per_second: float | None = 40.0, timeout: float = 30.0, retries: int = 5,
                 backoff: float = 0.5, sleep: Callable[[float], None] = time.sleep,
                 pool_size: int = 16):
        if not credential:
            raise ValueError("a TMDB API key or read access token is required (TMDB_API_KEY)")
        self._credential = Secret(credential)
        self._v4 = is_v4_token(credential)
        self.base_url = base_url.rstrip("/")
        self._session = build_session(retries=retries, backoff=backoff, timeout=timeout,
                                      pool_size=pool_size)
        if self._v4:
            self._session.headers["Authorization"] = f"Bearer {credential}"
        self._session.headers["Accept"] = "application/json"
        self._limiter = RateLimiter(per_second)
        self._sleep = sleep

    def get(self, path: str, params: dict[str, Any] | None = None) -> tuple[int, bytes]:
        query = dict(params or {})
        if not self._v4:
            query["api_key"] = self._credential.reveal()
        url = f"{self.base_url}/{path.lstrip('/')}"
        if query:
            url += "?" + urlencode(query)
        response = send(self._session, "GET", url, what=f"TMDB GET {path}",
                        limiter=self._limiter, ok_statuses=(404,), sleep=self._sleep)
        if response.status_code != 200:  # kept as a record: an error may echo the request
            return response.status_code, redact_bytes(response.content)
        return response.status_code, response.content


@dataclass(frozen=True)
class TmdbRequest:
    endpoint: str  # the structure of the answer: genre, discover, find, movie, tv
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    key: str = ""  # what was asked: an IMDB id, a TMDB id, a genre id and page

    def as_json(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "path": self.path, "params": self.params,
                "key": self.key}


@dataclass(frozen=True)
class TmdbRecord:
    request: TmdbRequest
    status: int
    body: bytes
    fetched_at: str

    @property
    def spec(self) -> str:
        """Where the record lands: its endpoint, or ``not_found`` (a different structure)."""
        return self.request.endpoint if self.status == 200 else "not_found"

    def envelope(self) -> bytes:
        body = self.body.strip()
        try:
            json.loads(body)
        except ValueError:
            body = json.dumps(body.decode("utf-8", errors="replace")).encode()
        head = json.dumps({"request": self.request.as_json(), "status": self.status,
                           "fetched_at": self.fetched_at}, separators=(",", ":"))
        return head[:-1].encode() + b',"response":' + body + b"}"

    def json(self) -> Any:
        return json.loads(self.body)


def fetch_all(api: TmdbApi, requests: Sequence[TmdbRequest], *, workers: int = 8,
              now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> list[TmdbRecord]:
    """Every request through a pool of at most ``workers`` threads; order kept."""
    def one(request: TmdbRequest) -> TmdbRecord:
        status, body = api.get(request.path, request.params)
        return TmdbRecord(request, status, body, now().isoformat(timespec="seconds"))

    if not requests:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(requests))),
                            thread_name_prefix="tmdb") as pool:
        return list(pool.map(one, requests))


def group_records(records: Iterable[bytes], *, max_records: int = MAX_RECORDS_PER_FILE,
                  max_bytes: int = MAX_BYTES_PER_FILE) -> list[bytes]:
    """JSON array files of at most ``max_records`` records and ``max_bytes`` bytes each.

    A single record bigger than ``max_bytes`` cannot be split and gets a file of its own.
    """
    files: list[bytes] = []
    batch: list[bytes] = []
    size = 2  # "[" and "]"

    def flush() -> None:
        nonlocal batch, size
        if batch:
            files.append(b"[" + b",\n".join(batch) + b"]")
        batch, size = [], 2

    for record in records:
        extra = len(record) + (2 if batch else 0)
        if batch and (len(batch) >= max_records or size + extra > max_bytes):
            flush()
            extra = len(record)
        batch.append(record)
        size += extra
    flush()
    return files


def genre_requests() -> list[TmdbRequest]:
    return [TmdbRequest("genre", "/genre/movie/list", {"language": "en-US"}, "movie"),
            TmdbRequest("genre", "/genre/tv/list", {"language": "en-US"}, "tv")]


def discover_requests(pages: int, genres: Sequence[int] = (ACTION, ADVENTURE)) -> list[TmdbRequest]:
    """Page ranges of /discover/movie per genre: the unit of work of the fan-out."""
    return [TmdbRequest("discover", "/discover/movie",
                        {"with_genres": g, "sort_by": "popularity.desc", "page": p,
                         "include_adult": "false"}, f"{g}:{p}")
            for g in genres for p in range(1, pages + 1)]


def find_request(imdb_id: str) -> TmdbRequest:
    return TmdbRequest("find", f"/find/{imdb_id}", {"external_source": "imdb_id"}, imdb_id)


def movie_request(tmdb_id: int) -> TmdbRequest:
    return TmdbRequest("movie", f"/movie/{tmdb_id}", {"append_to_response": "credits,keywords"},
                       str(tmdb_id))


def tv_request(tmdb_id: int) -> TmdbRequest:
    return TmdbRequest("tv", f"/tv/{tmdb_id}",
                       {"append_to_response": "credits,keywords,external_ids"}, str(tmdb_id))


# The resource's fields and the variables that set them (``lakehouse.settings.env_fields``).
TMDB_ENV = {"api_key": "TMDB_API_KEY", "api_base_url": "TMDB_API_BASE_URL"}


class TmdbResource(dg.ConfigurableResource):
    """TMDB: the real API when ``TMDB_API_KEY`` is set, else the sample API (offline)."""

    api_key: str | None = Field(default=None, repr=False, description="TMDB_API_KEY (v3 key or "
                                "v4 read access token); unset: the sample API.")
    api_base_url: str | None = Field(default=None, description="TMDB_API_BASE_URL.")
    workers: int = Field(default=8, description="Parallel requests (bounded pool).")
    requests_per_second: float = Field(default=40.0, description="Client-side rate limit, "
                                       "shared by the workers (TMDB allows about 40-50/s).")
    max_titles_per_run: int = Field(default=500, description="Titles enriched per scheduled "
                                    "run; the backlog job has no budget.")
    chunk_titles: int = Field(default=1000, description="Titles asked between two landings: "
                              "an interrupted run loses at most one chunk of answers.")
    retry_not_found_days: int = Field(default=30, description="An id TMDB did not know (404, "
                                      "empty /find) is asked again after this many days.")
    discover_pages: int = Field(default=2, description="/discover/movie pages per genre.")
    use_sample: bool | None = Field(default=None, description="Default: sample unless a key "
                                    "is set.")

    def _credential(self) -> str | None:
        credential = self.api_key or None
        register(credential)
        return credential

    @property
    def is_sample(self) -> bool:
        if self.use_sample is not None:
            return self.use_sample
        return self._credential() is None

    def api(self) -> TmdbApi:
        if self.is_sample:
            return SampleTmdbApi()
        base = self.api_base_url or DEFAULT_TMDB_BASE_URL
        return TmdbClient(self._credential() or "", base, per_second=self.requests_per_second,
                          pool_size=max(10, self.workers))
