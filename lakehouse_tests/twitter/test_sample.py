"""The sample backend (no token): realistic v2 payloads, deterministic; the demo on it."""

import json

import dagster as dg
import polars as pl
import pytest

from lakehouse.defs.twitter import demo
from lakehouse.lake.delta import scan
from lakehouse.lake.location import Lake
from lakehouse.sources.twitter import TwitterResource
from lakehouse.sources.twitter_sample import SampleTwitterApi


def all_pages(api: SampleTwitterApi) -> list[dict]:
    pages, token = [], None
    while True:
        body, _ = api.search_recent_page("q", None, token)
        pages.append(json.loads(body))
        token = pages[-1]["meta"].get("next_token")
        if not token:
            return pages


def test_sample_is_deterministic_and_covers_the_v2_shapes() -> None:
    first, second = all_pages(SampleTwitterApi()), all_pages(SampleTwitterApi())
    assert first == second
    tweets = [t for page in first for t in page["data"]]
    assert len({t["id"] for t in tweets}) == len(tweets) > 500
    kinds = {r["type"] for t in tweets for r in t.get("referenced_tweets", [])}
    assert kinds == {"retweeted", "replied_to", "quoted"}
    assert {"pt", "en"} <= {t["lang"] for t in tweets}
    entities = {k for t in tweets for k in t.get("entities", {})}
    assert entities == {"hashtags", "mentions", "urls"}
    assert any(t["text"].startswith("RT @") for t in tweets)
    assert any(ord(c) > 0xFFFF for t in tweets for c in t["text"])  # emoji
    assert any("geo" in t for t in tweets)
    assert all(page["includes"]["users"] for page in first)
    assert any("places" in page["includes"] for page in first)
    ids = [int(t["id"]) for t in tweets]
    assert ids == sorted(ids, reverse=True)  # newest first, as the API pages


def test_since_id_returns_only_newer_sample_tweets() -> None:
    api = SampleTwitterApi()
    newest = json.loads(api.search_recent_page("q", None, None)[0])["meta"]["newest_id"]
    body, _ = api.search_recent_page("q", newest, None)
    assert json.loads(body) == {"meta": {"result_count": 0}}


def test_demo_lands_sample_search_and_stream_and_summarises(
        lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWITTER_BEARER_TOKEN", raising=False)
    assert TwitterResource().is_sample
    demo.materialize_sample(dg.DagsterInstance.ephemeral())
    tweets = scan(lake, lake.table_uri("silver", "tweets")).collect()
    assert set(tweets["source"]) == {"search", "stream"}
    assert tweets["id"].n_unique() == tweets.height
    text = demo.summary(lake)
    sentiment = scan(lake, lake.table_uri("silver", "tweet_sentiment")).collect()
    for label, count in sentiment.group_by("sentiment_label").len().iter_rows():
        assert label in text and str(count) in text
    assert pl.Series(sentiment["sentiment_label"]).is_in(["Negative", "Neutral", "Positive"]).all()
