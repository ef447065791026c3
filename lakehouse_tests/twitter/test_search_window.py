"""A search mark older than recent search's 7-day window recovers by itself, against a fake
API v2 that enforces the real rule (ids decoded as snowflakes; a since_id or start_time before
the window is answered 400 with Twitter's own message)."""

import json
import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from lakehouse.lake.location import Lake
from lakehouse.sources.twitter import (
    SEARCH_PREFIX,
    SEARCH_STATE_KEY,
    SearchMark,
    TwitterClient,
    poll_search,
    read_search_mark,
)

TOKEN = "AAAAAAAAAAAAAAAAAAAAAwindow-test-token"
EPOCH_MS = 1288834974657
SEARCH = "/2/tweets/search/recent"


def snowflake(moment: datetime, sequence: int = 0) -> str:
    return str(((int(moment.timestamp() * 1000) - EPOCH_MS) << 22) | sequence)


def made_at(tweet_id: str) -> datetime:
    return datetime.fromtimestamp(((int(tweet_id) >> 22) + EPOCH_MS) / 1000, UTC)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


class RecentSearch:
    """/2/tweets/search/recent over a day-by-day timeline of tweets, with the 7-day rule;
    ``skew`` puts the server's clock ahead of ours."""

    def __init__(self, server: HTTPServer, now: datetime, skew: timedelta = timedelta(0)):
        self.now = now + skew
        self.tweets = [{"id": snowflake(now - timedelta(hours=h), h), "text": f"filme {h}",
                        "author_id": "2244994945", "created_at": iso(now - timedelta(hours=h)),
                        "lang": "pt", "edit_history_tweet_ids": [snowflake(now - timedelta(hours=h), h)]}
                       for h in range(1, 24 * 10, 12)]  # every 12 h for 10 days, newest first
        self.args: list[dict[str, str]] = []
        self._lock = threading.Lock()
        server.expect_request(SEARCH).respond_with_handler(self)

    def __call__(self, request: Request) -> Response:
        args = dict(request.args)
        with self._lock:
            self.args.append(args)
        floor = self.now - timedelta(days=7)
        since, start = args.get("since_id"), args.get("start_time")
        if since and made_at(since) < floor:
            return self._invalid("since_id", since,
                                 f"Invalid 'since_id':'{since}'. 'since_id' must be a tweet id "
                                 f"created after {iso(floor)}. Please use a 'since_id' that is "
                                 "newer, or use a 'start_time' parameter instead.")
        if start and datetime.fromisoformat(start.replace("Z", "+00:00")) < floor:
            return self._invalid("start_time", start,
                                 f"Invalid 'start_time':'{start}'. 'start_time' must be on or "
                                 f"after {iso(floor)}")
        begin = datetime.fromisoformat(start.replace("Z", "+00:00")) if start else floor
        found = [t for t in self.tweets if (not since or int(t["id"]) > int(since))
                 and made_at(t["id"]) >= begin]
        if not found:
            return Response(json.dumps({"meta": {"result_count": 0}}), 200,
                            content_type="application/json")
        body = {"data": found, "includes": {"users": [{"id": "2244994945", "name": "X",
                                                       "username": "x"}]},
                "meta": {"newest_id": found[0]["id"], "oldest_id": found[-1]["id"],
                         "result_count": len(found)}}
        return Response(json.dumps(body), 200, content_type="application/json",
                        headers={"x-rate-limit-remaining": "449"})

    @staticmethod
    def _invalid(name: str, value: str, message: str) -> Response:
        return Response(json.dumps({
            "errors": [{"parameters": {name: [value]}, "message": message}],
            "title": "Invalid Request", "detail": "One or more parameters to your request "
            "was invalid.", "type": "https://api.twitter.com/2/problems/invalid-request"}),
            400, content_type="application/json")


def client(server: HTTPServer) -> TwitterClient:
    return TwitterClient(TOKEN, server.url_for("/").rstrip("/"), backoff=0.01, retries=0)


@pytest.mark.parametrize("age, skew", [(timedelta(days=12), timedelta(0)),
                                       (timedelta(days=7) - timedelta(seconds=30),
                                        timedelta(minutes=1))],
                         ids=["stale-by-its-id", "refused-by-the-api"])
def test_a_mark_older_than_the_window_restarts_from_its_start_and_logs_the_gap(
        httpserver: HTTPServer, lake: Lake, caplog: pytest.LogCaptureFixture,
        age: timedelta, skew: timedelta) -> None:
    now = datetime.now(UTC)
    api = RecentSearch(httpserver, now, skew)
    old_mark = snowflake(now - age)
    lake.write_bytes(SEARCH_STATE_KEY, SearchMark(old_mark).to_json())

    with caplog.at_level(logging.WARNING, logger="lakehouse.sources.twitter"):
        result = poll_search(client(httpserver), lake, "filme", clock=lambda: now)

    assert result.complete and result.tweets == 14  # every tweet of the last 7 days
    assert len(lake.list_keys(SEARCH_PREFIX)) == 1
    newest = api.tweets[0]["id"]
    assert read_search_mark(lake) == SearchMark(newest)
    last = api.args[-1]
    assert "since_id" not in last
    start = datetime.fromisoformat(last["start_time"].replace("Z", "+00:00"))
    assert now - timedelta(days=7) < start <= now - timedelta(days=7) + timedelta(minutes=15)
    # The gap: from the old mark's time to the window's start.
    assert result.gap == (made_at(old_mark).strftime("%Y-%m-%dT%H:%M:%SZ"), last["start_time"])
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert old_mark in warning and "may be missing" in warning and result.gap[0] in warning
    if skew:  # our clock judged the mark fresh: the API's 400 started the recovery
        assert api.args[0]["since_id"] == old_mark and len(api.args) == 2
    else:  # judged stale from its snowflake id: the refused call is never made
        assert len(api.args) == 1

    # The next poll is an ordinary one from the new mark.
    again = poll_search(client(httpserver), lake, "filme", clock=lambda: now)
    assert again.complete and again.tweets == 0 and api.args[-1]["since_id"] == newest
    assert again.gap is None
