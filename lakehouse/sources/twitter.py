"""Twitter API v2: recent search and the sample/filtered stream, their landing, and the resource.

Landing zone layout:

- ``raw/twitter/search/YYYY/MM/DD/<landed>-<newest_id>-<oldest_id>.json``: one recent-search
  page, bytes unchanged.
- ``raw/twitter/stream/YYYY/MM/DD/<opened>-<pid>-<seq>.ndjson``: stream lines (one tweet
  envelope each), bytes unchanged, flushed by size or age (``lakehouse.lake.segments``).
- ``raw/twitter/state/search.json``: the search high-water mark (``since_id``) and, when a poll
  had to stop early, the page token to resume it. It lives in the lake, beside the data, so a
  run on any machine continues where the last one stopped.

Every call goes through ``lakehouse.sources.http``: retries on 5xx, the bearer token redacted
from errors and logs, 429 answers honoured by waiting until ``x-rate-limit-reset``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, Protocol

import dagster as dg
import duckdb
import polars as pl
import requests
import urllib3
from pydantic import Field

from lakehouse.lake.jsondecode import decode_json
from lakehouse.lake.location import Lake, raw_key, raw_prefix
from lakehouse.lake.rawfiles import landed_at, ndjson_line_chunks
from lakehouse.lake.segments import SegmentWriter, landing_stamp
from lakehouse.secrets import register
from lakehouse.sources.http import ApiError, build_session, send
from lakehouse.sources.twitter_sample import SampleTweets, SampleTwitterApi
from lakehouse.transforms.twitter import (
    ENVELOPE_SCHEMA,
    RAW_RECORD_SCHEMA,
    SEARCH_PAGE_DTYPE,
    STREAM_LINE_DTYPE,
    UTC_US,
    envelope_columns,
)

log = logging.getLogger(__name__)

DEFAULT_API_BASE_URL = "https://api.twitter.com"
DEFAULT_SEARCH_QUERY = "cinema OR filme OR movie OR film"
SOURCE = "twitter"
SEARCH_SPEC, STREAM_SPEC = "search", "stream"
# The raw assets' keys; their files land under the keys' paths.
RAW_SEARCH, RAW_STREAM = ("raw", SOURCE, SEARCH_SPEC), ("raw", SOURCE, STREAM_SPEC)
SEARCH_PREFIX = raw_prefix(RAW_SEARCH)
STREAM_PREFIX = raw_prefix(RAW_STREAM)
RAW_PREFIXES = (SEARCH_PREFIX, STREAM_PREFIX)
SEARCH_STATE_KEY = f"raw/{SOURCE}/state/search.json"
RULES_PATH = "/2/tweets/search/stream/rules"

TWEET_FIELDS = ("attachments,author_id,context_annotations,conversation_id,created_at,"
                "edit_history_tweet_ids,entities,geo,in_reply_to_user_id,lang,note_tweet,"
                "possibly_sensitive,public_metrics,referenced_tweets,source")
# referenced_tweets.id puts what a retweet, quote or reply points at in includes.tweets (with
# its author in includes.users); entities.mentions.username puts the mentioned users there.
EXPANSIONS = ("attachments.media_keys,author_id,entities.mentions.username,geo.place_id,"
              "in_reply_to_user_id,referenced_tweets.id,referenced_tweets.id.author_id")
USER_FIELDS = ("created_at,description,location,protected,public_metrics,url,verified,"
               "verified_type")
PLACE_FIELDS = "country,country_code,full_name,geo,id,name,place_type"
RECENT_SEARCH_WINDOW = timedelta(days=7)
WINDOW_MARGIN = timedelta(minutes=10)  # clock skew and the poll's own duration
TWITTER_EPOCH_MS = 1288834974657
MEDIA_FIELDS = ("alt_text,duration_ms,height,media_key,preview_image_url,public_metrics,type,"
                "url,width")
FIELD_PARAMS = {"tweet.fields": TWEET_FIELDS, "expansions": EXPANSIONS,
                "user.fields": USER_FIELDS, "place.fields": PLACE_FIELDS,
                "media.fields": MEDIA_FIELDS}


class RateLimited(Exception):
    """The API asked to wait longer than we are willing to block a run."""

    def __init__(self, reset_at: float | None):
        super().__init__(f"rate limited until {reset_at}")
        self.reset_at = reset_at


class SearchApi(Protocol):
    def search_recent_page(self, query: str, since_id: str | None, next_token: str | None,
                           max_results: int = 100, start_time: str | None = None
                           ) -> tuple[bytes, dict[str, str]]: ...


def reset_wait(clock: Callable[[], float] = time.time) -> Callable[[requests.Response], float]:
    """Seconds until ``x-rate-limit-reset`` (epoch seconds), as Twitter asks on 429."""
    def wait_for(response: requests.Response) -> float:
        reset = response.headers.get("x-rate-limit-reset")
        try:
            return max(0.0, float(reset) - clock() + 1.0) if reset else 60.0
        except ValueError:
            return 60.0
    return wait_for


class TwitterClient:
    """The real API v2 over HTTP with a bearer token."""

    # Recent search answers only for the last 7 days (a since_id older than that is refused).
    search_window: timedelta | None = RECENT_SEARCH_WINDOW

    def __init__(self, bearer_token: str, base_url: str = DEFAULT_API_BASE_URL, *,
                 timeout: float = 30.0, retries: int = 5, backoff: float = 0.5,
                 max_wait: float = 60.0, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time):
        if not bearer_token:
            raise ValueError("a Twitter bearer token is required (TWITTER_BEARER_TOKEN)")
        self._token = bearer_token
        register(bearer_token)
        self._base_url = base_url.rstrip("/")
        self._session = build_session(retries=retries, backoff=backoff, timeout=timeout)
        self._session.headers["Authorization"] = f"Bearer {bearer_token}"
        self._max_wait = max_wait
        self._sleep = sleep
        self._clock = clock

    def search_recent_page(self, query: str, since_id: str | None, next_token: str | None,
                           max_results: int = 100, start_time: str | None = None
                           ) -> tuple[bytes, dict[str, str]]:
        """One page of ``/2/tweets/search/recent``: (body exactly as received, headers).

        Raises ``RateLimited`` when a 429 asks to wait longer than ``max_wait``.
        """
        params: dict[str, Any] = {"query": query, "max_results": max_results, **FIELD_PARAMS}
        if since_id:
            params["since_id"] = since_id
        if next_token:
            params["next_token"] = next_token
        if start_time:
            params["start_time"] = start_time
        try:
            response = send(self._session, "GET", f"{self._base_url}/2/tweets/search/recent",
                            what="Twitter recent search", secrets=[self._token],
                            wait_for=reset_wait(self._clock), max_wait=self._max_wait,
                            sleep=self._sleep, params=params)
        except ApiError as exc:
            if exc.status == 429:
                raise RateLimited(None) from None
            raise
        return response.content, dict(response.headers)

    # -- filtered-stream rules (/2/tweets/search/stream/rules) --------------------------------

    def _rules_call(self, method: str, what: str, **kwargs: Any) -> dict[str, Any]:
        response = send(self._session, method, f"{self._base_url}{RULES_PATH}",
                        what=f"Twitter stream rules ({what})", secrets=[self._token],
                        wait_for=reset_wait(self._clock), max_wait=self._max_wait,
                        sleep=self._sleep, **kwargs)
        return response.json()

    def list_rules(self, ids: list[str] | None = None) -> dict[str, Any]:
        """The filtered stream's rules: ``{"data": [{"id", "value", "tag"}], "meta": ...}``
        (no ``data`` when there are none)."""
        return self._rules_call("GET", "list", params={"ids": ",".join(ids)} if ids else None)

    def add_rules(self, rules: list[dict[str, str]], dry_run: bool = False) -> dict[str, Any]:
        """Add ``[{"value", "tag"}]``. The API answers 200 with the created rules in ``data``,
        ``meta.summary`` (created, not_created, valid, invalid) and, per refused rule, an
        item of ``errors`` (``DuplicateRule`` with the existing id, or an invalid rule)."""
        return self._rules_call("POST", "add", json={"add": rules},
                                params={"dry_run": "true"} if dry_run else None)

    def delete_rules(self, ids: list[str], dry_run: bool = False) -> dict[str, Any]:
        """Delete rules by id; ``meta.summary`` says deleted / not_deleted, ``errors`` why."""
        return self._rules_call("POST", "delete", json={"delete": {"ids": ids}},
                                params={"dry_run": "true"} if dry_run else None)

    def stream_lines(self, filtered: bool = False, read_timeout: float = 90.0) -> Iterator[bytes]:
        """Lines of the sample (or filtered) stream as received, keep-alives included (b"").

        One connection; the caller reconnects. A 429 raises ``ApiError`` at once (status 429)
        so the caller can back off as the API asks for streams.
        """
        path = "/2/tweets/search/stream" if filtered else "/2/tweets/sample/stream"
        response = send(self._session, "GET", f"{self._base_url}{path}",
                        what="Twitter stream", secrets=[self._token], rate_limit_attempts=1,
                        params=FIELD_PARAMS, stream=True, timeout=(10, read_timeout))
        with response:
            yield from split_lines(lambda: response.raw.read1(64 * 1024))


def split_lines(read: Callable[[], bytes]) -> Iterator[bytes]:
    """Lines (without ``\r\n``) from a byte source, each handed on as soon as its newline
    arrives: ``read`` returns whatever bytes are available (``b""`` at the end)."""
    pending = b""
    while chunk := read():
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.removesuffix(b"\r")
    if pending:
        yield pending.removesuffix(b"\r")


# -- search landing ---------------------------------------------------------------------------


@dataclass
class SearchMark:
    """The search high-water mark; ``resume_*`` is set while a poll is unfinished."""

    since_id: str | None = None
    resume_token: str | None = None
    resume_newest_id: str | None = None
    resume_start_time: str | None = None  # a poll restarted from the window's start

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, sort_keys=True).encode()


def snowflake_time(tweet_id: str) -> datetime:
    """When a tweet id was made: its top bits are milliseconds since Twitter's epoch."""
    return datetime.fromtimestamp(((int(tweet_id) >> 22) + TWITTER_EPOCH_MS) / 1000, UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_refused_since_id(exc: ApiError) -> bool:
    """The 400 recent search answers for a since_id older than its window."""
    return exc.status == 400 and "must be a tweet id created after" in str(exc)


def read_search_mark(lake: Lake) -> SearchMark:
    if not lake.exists(SEARCH_STATE_KEY):
        return SearchMark()
    return SearchMark(**json.loads(lake.read_bytes(SEARCH_STATE_KEY)))


def search_key(landed_at: datetime, newest_id: str, oldest_id: str) -> str:
    name = f"{landing_stamp(landed_at)}-{newest_id}-{oldest_id}.json"
    return raw_key(SEARCH_PREFIX, landed_at.astimezone(UTC).date(), name)


@dataclass
class SearchPollResult:
    keys: list[str] = field(default_factory=list)
    tweets: int = 0
    since_id: str | None = None
    mark: SearchMark = field(default_factory=SearchMark)
    complete: bool = False
    stopped_because: str = ""
    gap: tuple[str, str] | None = None  # (from, to): tweets there may be missing


def poll_search(api: SearchApi, lake: Lake, query: str, *, max_pages: int = 50,
                max_results: int = 100, max_wait: float = 60.0,
                clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                sleep: Callable[[float], None] = time.sleep) -> SearchPollResult:
    """Land the tweets newer than the mark, page by page, and move the mark.

    ``since_id`` stays fixed across the pages of one poll; the first page's ``meta.newest_id``
    becomes the new mark only once the last page is landed. A poll that must stop early (page
    budget, or a rate limit whose reset is far) saves the next page token instead, and the
    next run resumes there before moving on: nothing between the two marks is skipped.

    A mark the API no longer takes (older than its window, judged from the snowflake id, or
    refused with a 400) restarts the poll from the window's start (``start_time``), with a
    warning naming the gap in which tweets may be missing.
    """
    mark = read_search_mark(lake)
    result = SearchPollResult(since_id=mark.since_id)
    token, newest = mark.resume_token, mark.resume_newest_id
    window: timedelta | None = getattr(api, "search_window", None)

    def restart(why: str) -> SearchMark:
        now = clock()
        start = now - (window or RECENT_SEARCH_WINDOW) + WINDOW_MARGIN
        since = snowflake_time(mark.since_id) if mark.since_id else start
        result.gap = (_iso(since), _iso(start))
        log.warning("search mark since_id=%s %s; restarting from the window's start "
                    "(start_time=%s): tweets from %s to %s may be missing", mark.since_id, why,
                    _iso(start), *result.gap)
        return SearchMark(None, resume_start_time=_iso(start))

    if (window and mark.since_id
            and snowflake_time(mark.since_id) < clock() - window):
        mark = restart(f"was made {_iso(snowflake_time(mark.since_id))}, before recent "
                       "search's window")
        token = newest = None
    for _ in range(max_pages):
        try:
            if mark.resume_start_time:
                body, headers = api.search_recent_page(query, mark.since_id, token, max_results,
                                                       start_time=mark.resume_start_time)
            else:
                body, headers = api.search_recent_page(query, mark.since_id, token, max_results)
        except RateLimited:
            result.stopped_because = "rate limited (429) with a distant reset"
            break
        except ApiError as exc:
            if mark.since_id and is_refused_since_id(exc):
                mark = restart("was refused by the API (older than its window)")
                token = newest = None
                continue
            if not (exc.status == 400 and token and token == mark.resume_token):
                raise
            # A saved page token the API no longer takes: poll again from the same since_id
            # (tweets already landed come back and are deduplicated in silver; none is lost).
            log.warning("the saved next_token was refused; restarting from since_id")
            token = newest = None
            mark = SearchMark(mark.since_id)
            continue
        page = json.loads(body)
        meta = page.get("meta", {})
        if page.get("data"):
            key = search_key(clock(), meta["newest_id"], meta["oldest_id"])
            lake.write_bytes(key, body)
            result.keys.append(key)
            result.tweets += len(page["data"])
            newest = newest or meta["newest_id"]
        token = meta.get("next_token")
        if not token:
            mark = SearchMark(since_id=newest or mark.since_id)
            lake.write_bytes(SEARCH_STATE_KEY, mark.to_json())
            result.complete = True
            break
        # Progress is durable page by page: a crash resumes at the next page.
        mark = SearchMark(mark.since_id, token, newest, mark.resume_start_time)
        lake.write_bytes(SEARCH_STATE_KEY, mark.to_json())
        wait = _proactive_wait(headers, clock())
        if wait is not None and wait > max_wait:
            result.stopped_because = "rate limit exhausted with a distant reset"
            break
        if wait:
            sleep(wait)
    else:
        result.stopped_because = f"page budget of {max_pages} reached"
    result.mark = mark
    return result


def _proactive_wait(headers: dict[str, str], now: datetime) -> float | None:
    """Seconds to wait before the next call when ``x-rate-limit-remaining`` is 0, else None."""
    lowered = {k.lower(): v for k, v in headers.items()}
    remaining = lowered.get("x-rate-limit-remaining")
    if remaining is None or remaining.strip() != "0":
        return None
    try:
        return max(0.0, float(lowered.get("x-rate-limit-reset", "0")) - now.timestamp() + 1.0)
    except ValueError:
        return None


# -- stream landing ---------------------------------------------------------------------------


def stream_key(segment_name: str, opened_at: datetime) -> str:
    return raw_key(STREAM_PREFIX, opened_at.astimezone(UTC).date(), segment_name)


def stream_writer(lake: Lake, spool_dir: str, *, max_bytes: int = 128 * 1024 * 1024,
                  max_age: float = 300.0) -> SegmentWriter:
    """Micro-batches of stream lines: sealed into the lake by size or age (Firehose's rule)."""
    return SegmentWriter(lake, spool_dir, stream_key, max_bytes=max_bytes, max_age=max_age)


@dataclass
class StreamStats:
    tweets: int = 0
    keep_alives: int = 0
    connections: int = 0
    disconnects: int = 0
    last_error: str = ""
    waits: list[float] = field(default_factory=list)


def consume_stream(connect: Callable[[], Iterator[bytes]], writer: SegmentWriter,
                   stop: threading.Event, *, max_tweets: int | None = None,
                   max_connections: int | None = None, backoff_initial: float = 1.0,
                   backoff_max: float = 64.0, rate_limit_backoff: float = 60.0) -> StreamStats:
    """Append every stream line to ``writer`` until ``stop`` is set, reconnecting on drops.

    Keep-alive newlines are skipped. A dropped or ended connection is retried with exponential
    backoff (reset once a tweet arrives); a 429 backs off from ``rate_limit_backoff``, as the
    API asks for streams. The caller seals the last batch (``writer.close()``).
    """
    stats = StreamStats()
    delay = backoff_initial
    while not stop.is_set():
        if max_connections is not None and stats.connections >= max_connections:
            break
        stats.connections += 1
        try:
            for line in connect():
                if not line.strip():
                    stats.keep_alives += 1
                else:
                    writer.append(line.strip())
                    stats.tweets += 1
                    delay = backoff_initial
                    if max_tweets is not None and stats.tweets >= max_tweets:
                        stop.set()
                if stop.is_set():
                    break
            else:
                if not stop.is_set():
                    stats.last_error = "the stream ended"
        except ApiError as exc:
            stats.last_error = str(exc)
            if exc.status == 429:
                delay = max(delay, rate_limit_backoff)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            stats.last_error = f"{type(exc).__name__}: {exc}"
        if stop.is_set():
            break
        stats.disconnects += 1
        log.warning("stream disconnected (%s); reconnecting in %.1f s", stats.last_error, delay)
        stats.waits.append(delay)
        stop.wait(delay)
        delay = min(delay * 2, backoff_max)
    return stats


# -- reading raw files back -------------------------------------------------------------------


def records_of_file(key: str, data: bytes) -> pl.DataFrame:
    """``RAW_RECORD_SCHEMA`` rows of one raw file: a search page is one record, a stream batch
    one record per non-empty line (its index is the line number)."""
    frames = list(record_chunks(key, data, max(len(data), 1)))
    return pl.concat(frames) if frames else pl.DataFrame(schema=RAW_RECORD_SCHEMA)


def record_chunks(key: str, data: bytes | BinaryIO, max_bytes: int) -> Iterator[pl.DataFrame]:
    """``records_of_file`` a bounded piece at a time, from the file's bytes or a stream of
    them: a stream batch in frames of whole lines, about ``max_bytes`` of its text each, so a
    big batch is read, decoded and written piece by piece; a search page (one record) whole."""
    spec = STREAM_SPEC if key.endswith(".ndjson") else SEARCH_SPEC
    if spec == STREAM_SPEC:
        frames: Iterator[pl.DataFrame] = ndjson_line_chunks(data, max_bytes)
    else:
        page = data if isinstance(data, bytes) else data.read()
        frames = iter([pl.DataFrame({"_record_index": [0],
                                     "record": [page.decode("utf-8", errors="replace")]})])
    stamp = landed_at(key)
    for frame in frames:
        yield frame.select(
            pl.lit(key).alias("_source_file"), pl.col("_record_index").cast(pl.Int64),
            pl.lit(spec).alias("spec"), pl.col("record"),
            pl.lit(stamp).cast(UTC_US).alias("_ingested_at"),
        )


def decode_records(records: pl.DataFrame,
                   con: duckdb.DuckDBPyConnection | None = None) -> pl.DataFrame:
    """Records plus the ``ENVELOPE_SCHEMA`` columns (pages and lines decoded by their shape).
    ``con``: a ``json_decoder()`` connection, for a load decoding piece after piece."""
    parts = []
    specs = records.get_column("spec").unique().to_list()
    for spec, dtype in ((SEARCH_SPEC, SEARCH_PAGE_DTYPE), (STREAM_SPEC, STREAM_LINE_DTYPE)):
        if spec in specs:
            # A piece of one file is all of one spec: no filtered copy of its texts.
            subset = records if len(specs) == 1 else records.filter(pl.col("spec") == spec)
            decoded = decode_json(subset, "record", dtype, "_envelope", "_json_valid", con)
            # In memory: the default engine streamed it (0.078 -> 0.053 s of CPU, 100k lines).
            parts.append(envelope_columns(decoded.lazy()).collect(engine="in-memory"))
    if not parts:
        return pl.DataFrame(schema={**RAW_RECORD_SCHEMA, **ENVELOPE_SCHEMA})
    return pl.concat(parts, how="vertical_relaxed")


# -- the Dagster resource ---------------------------------------------------------------------


# The resource's fields and the variables that set them (``lakehouse.settings.env_fields``).
TWITTER_ENV = {"bearer_token": "TWITTER_BEARER_TOKEN", "api_base_url": "TWITTER_API_BASE_URL",
               "search_query": "TWITTER_SEARCH_QUERY"}


class TwitterResource(dg.ConfigurableResource):
    """Where tweets come from: API v2 when a bearer token is set, else the sample backend.

    The code location sets the fields from ``TWITTER_ENV``'s variables as ``dg.EnvVar``.
    """

    bearer_token: str | None = Field(default=None, repr=False, description="TWITTER_BEARER_TOKEN; "
                                     "unset: sample tweets.")
    api_base_url: str | None = Field(default=None, description="TWITTER_API_BASE_URL")
    search_query: str | None = Field(default=None, description="TWITTER_SEARCH_QUERY")
    max_pages_per_run: int = Field(default=50, description="Search pages per poll run.")
    max_wait_seconds: float = Field(default=60.0, description="Longest rate-limit wait inside "
                                    "a run; a later reset ends the run with the mark saved.")
    sample_per_day: int = Field(default=120, description="Sample tweets per day (no token).")

    def token(self) -> str | None:
        return self.bearer_token or None

    @property
    def is_sample(self) -> bool:
        return not self.token()

    def query(self) -> str:
        return self.search_query or DEFAULT_SEARCH_QUERY

    def base_url(self) -> str:
        return self.api_base_url or DEFAULT_API_BASE_URL

    def client(self) -> TwitterClient:
        return TwitterClient(self.token() or "", self.base_url(), max_wait=self.max_wait_seconds)

    def search_api(self) -> SearchApi:
        if self.is_sample:
            return SampleTwitterApi(SampleTweets(per_day=self.sample_per_day))
        return self.client()
