"""The real API v2 client and landing against a local server answering in the v2 format."""

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from lakehouse.lake.location import Lake
from lakehouse.lake.segments import SegmentWriter
from lakehouse.sources.http import ApiError
from lakehouse.sources.twitter import (
    SEARCH_PREFIX,
    SEARCH_STATE_KEY,
    SearchMark,
    TwitterClient,
    consume_stream,
    poll_search,
    read_search_mark,
    stream_key,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "twitter"
TOKEN = "AAAAAAAAAAAAAAAAAAAAAsecret-bearer-token"
PAGE_1 = (FIXTURES / "search_page_1.json").read_bytes()
PAGE_2 = (FIXTURES / "search_page_2.json").read_bytes()
SEARCH = "/2/tweets/search/recent"
# A mark from an hour ago (a snowflake id): recent search takes since_id from its last 7 days.
OLD_MARK = str((int(time.time() * 1000) - 1288834974657 - 3_600_000) << 22)


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def client(server: HTTPServer, sleep: Sleeps) -> TwitterClient:
    return TwitterClient(TOKEN, server.url_for("/").rstrip("/"), sleep=sleep, backoff=0.01,
                         max_wait=60)


def search_calls(server: HTTPServer) -> list[dict[str, str]]:
    return [dict(req.args) for req, _ in server.log if req.path == SEARCH]


def test_search_pages_keep_since_id_and_the_mark_becomes_the_first_newest_id(
        httpserver: HTTPServer, lake: Lake) -> None:
    lake.write_bytes(SEARCH_STATE_KEY, SearchMark(OLD_MARK).to_json())
    httpserver.expect_ordered_request(SEARCH).respond_with_data(PAGE_1, content_type="application/json")
    httpserver.expect_ordered_request(SEARCH).respond_with_data(PAGE_2, content_type="application/json")

    result = poll_search(client(httpserver, Sleeps()), lake, "filme OR movie")

    calls = search_calls(httpserver)
    assert [c["since_id"] for c in calls] == [OLD_MARK, OLD_MARK]
    assert "next_token" not in calls[0]
    assert calls[1]["next_token"] == json.loads(PAGE_1)["meta"]["next_token"]
    assert calls[0]["query"] == "filme OR movie"
    assert "geo.place_id" in calls[0]["expansions"] and "public_metrics" in calls[0]["tweet.fields"]
    # What silver keeps must be asked for: referenced tweets and their authors, media,
    # mentioned users; long-post text, edits, the client, annotations; the user fields.
    assert {"referenced_tweets.id", "referenced_tweets.id.author_id", "attachments.media_keys",
            "entities.mentions.username"} <= set(calls[0]["expansions"].split(","))
    assert {"note_tweet", "edit_history_tweet_ids", "source", "context_annotations",
            "attachments"} <= set(calls[0]["tweet.fields"].split(","))
    assert {"protected", "url", "verified_type", "public_metrics"} <= \
        set(calls[0]["user.fields"].split(","))
    assert "media_key" in calls[0]["media.fields"].split(",")
    assert all(req.headers["Authorization"] == f"Bearer {TOKEN}" for req, _ in httpserver.log)
    assert result.complete and result.tweets == 12
    assert [lake.read_bytes(k) for k in result.keys] == [PAGE_1, PAGE_2]  # byte for byte
    assert all(k.startswith(SEARCH_PREFIX + "/") for k in result.keys)
    assert read_search_mark(lake) == SearchMark(json.loads(PAGE_1)["meta"]["newest_id"])


def test_next_poll_asks_only_for_newer_tweets(httpserver: HTTPServer, lake: Lake) -> None:
    httpserver.expect_ordered_request(SEARCH).respond_with_data(PAGE_2)
    httpserver.expect_ordered_request(SEARCH).respond_with_data(b'{"meta":{"result_count":0}}')
    # The polls happen an hour after the fixture's tweets, inside recent search's window.
    newest = json.loads(PAGE_2)["meta"]["newest_id"]
    at = datetime.fromtimestamp(((int(newest) >> 22) + 1288834974657) / 1000 + 3600, UTC)
    first = poll_search(client(httpserver, Sleeps()), lake, "q", clock=lambda: at)
    second = poll_search(client(httpserver, Sleeps()), lake, "q", clock=lambda: at)
    calls = search_calls(httpserver)
    assert "since_id" not in calls[0]
    assert calls[1]["since_id"] == json.loads(PAGE_2)["meta"]["newest_id"]
    assert len(first.keys) == 1 and second.keys == [] and second.complete


def test_429_with_a_near_reset_waits_until_the_reset_and_goes_on(
        httpserver: HTTPServer, lake: Lake) -> None:
    reset = int(time.time()) + 20
    httpserver.expect_ordered_request(SEARCH).respond_with_data(
        b'{"title":"Too Many Requests","type":"about:blank","status":429}', status=429,
        headers={"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)})
    httpserver.expect_ordered_request(SEARCH).respond_with_data(PAGE_2)
    sleeps = Sleeps()
    result = poll_search(client(httpserver, sleeps), lake, "q")
    assert result.complete and result.tweets == 6
    assert len(sleeps.calls) == 1 and 15 <= sleeps.calls[0] <= 22


def test_429_with_a_distant_reset_ends_the_run_and_the_next_run_resumes(
        httpserver: HTTPServer, lake: Lake) -> None:
    lake.write_bytes(SEARCH_STATE_KEY, SearchMark(OLD_MARK).to_json())
    httpserver.expect_ordered_request(SEARCH).respond_with_data(PAGE_1)
    httpserver.expect_ordered_request(SEARCH).respond_with_data(
        b'{"title":"Too Many Requests"}', status=429,
        headers={"x-rate-limit-reset": str(int(time.time()) + 900)})
    first = poll_search(client(httpserver, Sleeps()), lake, "q")
    assert not first.complete and "rate limited" in first.stopped_because
    token = json.loads(PAGE_1)["meta"]["next_token"]
    newest = json.loads(PAGE_1)["meta"]["newest_id"]
    assert read_search_mark(lake) == SearchMark(OLD_MARK, token, newest)

    httpserver.expect_ordered_request(SEARCH).respond_with_data(PAGE_2)
    second = poll_search(client(httpserver, Sleeps()), lake, "q")
    resumed = search_calls(httpserver)[-1]
    assert resumed["next_token"] == token and resumed["since_id"] == OLD_MARK
    assert second.complete and read_search_mark(lake) == SearchMark(newest)


def test_exhausted_quota_with_a_distant_reset_stops_after_the_page(
        httpserver: HTTPServer, lake: Lake) -> None:
    httpserver.expect_ordered_request(SEARCH).respond_with_data(PAGE_1, headers={
        "x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(time.time()) + 900)})
    result = poll_search(client(httpserver, Sleeps()), lake, "q")
    assert len(search_calls(httpserver)) == 1 and len(result.keys) == 1
    assert read_search_mark(lake).resume_token == json.loads(PAGE_1)["meta"]["next_token"]


def test_errors_name_the_call_and_never_the_token(httpserver: HTTPServer, lake: Lake) -> None:
    httpserver.expect_request(SEARCH).respond_with_data(
        b'{"title":"Unauthorized","status":401}', status=401)
    with pytest.raises(ApiError) as caught:
        poll_search(client(httpserver, Sleeps()), lake, "q")
    assert "Twitter recent search" in str(caught.value) and "401" in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert not lake.exists(SEARCH_STATE_KEY)


STREAM_LINES = [line for line in (FIXTURES / "stream.ndjson").read_bytes().split(b"\r\n") if line]


def stream_handler(chunks_per_connection: list[list[bytes]]):
    """Each connection streams its chunks; one ending in an exception drops the connection."""
    connections = iter(chunks_per_connection)

    def handle(_request: Request) -> Response:
        chunks = next(connections, [])

        def body():
            for chunk in chunks:
                if chunk == b"DROP":
                    raise ConnectionResetError("dropped by the test server")
                yield chunk
        return Response(body(), status=200, content_type="application/json")
    return handle


def test_stream_skips_keep_alives_and_reconnects_after_a_dropped_connection(
        httpserver: HTTPServer, lake: Lake, tmp_path: Path) -> None:
    first, second = STREAM_LINES[:3], STREAM_LINES[3:]
    httpserver.expect_request("/2/tweets/sample/stream").respond_with_handler(stream_handler([
        [b"\r\n", first[0] + b"\r\n", b"\r\n", first[1] + b"\r\n", first[2] + b"\r\n", b"DROP"],
        [b"\r\n"] + [line + b"\r\n" for line in second] + [b"\r\n"],
    ]))
    tw = client(httpserver, Sleeps())
    writer = SegmentWriter(lake, tmp_path / "spool", stream_key)
    stats = consume_stream(lambda: tw.stream_lines(read_timeout=10), writer, threading.Event(),
                           max_tweets=len(STREAM_LINES), backoff_initial=0.01)
    writer.close()

    assert stats.tweets == 5 and stats.connections == 2 and stats.disconnects == 1
    assert stats.keep_alives >= 3 and stats.waits == [0.01]
    [key] = writer.sealed
    assert key.startswith("raw/twitter/stream/") and key.endswith(".ndjson")
    assert lake.read_bytes(key).split(b"\n")[:-1] == STREAM_LINES


def test_stream_429_backs_off_before_reconnecting(httpserver: HTTPServer, lake: Lake,
                                                  tmp_path: Path) -> None:
    httpserver.expect_ordered_request("/2/tweets/sample/stream").respond_with_data(
        b'{"title":"ConnectionException"}', status=429)
    httpserver.expect_ordered_request("/2/tweets/sample/stream").respond_with_handler(
        stream_handler([[STREAM_LINES[0] + b"\r\n"]]))
    tw = client(httpserver, Sleeps())
    writer = SegmentWriter(lake, tmp_path / "spool", stream_key)
    stats = consume_stream(lambda: tw.stream_lines(read_timeout=10), writer, threading.Event(),
                           max_tweets=1, backoff_initial=0.01, rate_limit_backoff=0.5)
    writer.close()
    assert stats.tweets == 1 and "429" in stats.last_error
    assert stats.waits == [0.5]  # the stream's 429 rule, not the 0.01 s of a plain drop


def test_a_refused_resume_token_restarts_the_poll_from_since_id(
        httpserver: HTTPServer, lake: Lake) -> None:
    lake.write_bytes(SEARCH_STATE_KEY, SearchMark(OLD_MARK, "expired-token", "1").to_json())
    httpserver.expect_ordered_request(SEARCH).respond_with_data(
        b'{"errors":[{"message":"Invalid next_token"}],"title":"Invalid Request"}', status=400)
    httpserver.expect_ordered_request(SEARCH).respond_with_data(PAGE_2)
    result = poll_search(client(httpserver, Sleeps()), lake, "q")
    calls = search_calls(httpserver)
    assert calls[0]["next_token"] == "expired-token"
    assert "next_token" not in calls[1] and calls[1]["since_id"] == OLD_MARK
    assert result.complete
    assert read_search_mark(lake) == SearchMark(json.loads(PAGE_2)["meta"]["newest_id"])
