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
    assert any(page["includes"].get("tweets") for page in first)
    assert any(page["includes"].get("media") for page in first)
    assert any("note_tweet" in t and len(t["note_tweet"]["text"]) > 280 for t in tweets)
    assert any(len(t["edit_history_tweet_ids"]) == 2 for t in tweets)
    assert all(t["source"] for t in tweets)
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
    tweets = scan(lake, lake.table_uri("silver", "twitter_tweets")).collect()
    assert set(tweets["collected_via"]) == {"search", "stream"}
    assert set(tweets["source"]) == {"Twitter for Android", "Twitter for iPhone",
                                     "Twitter Web App"}
    assert tweets["id"].n_unique() == tweets.height
    # The sample exercises the newer fields end to end: long posts, edits, media, rules.
    assert tweets.filter("has_note_tweet")["text"].str.len_chars().min() > 280
    assert tweets.filter("seen_via_reference").height == 2  # old posts retweeted this week
    edits = tweets.filter(pl.col("edit_of").is_not_null())
    assert edits.height >= 1
    originals = tweets.filter(pl.col("id").is_in(edits["edit_of"].implode()))
    assert set(originals["latest_version_id"]) <= set(edits["id"])
    assert tweets.filter(pl.col("media_keys").list.len() > 0).height >= 1
    assert scan(lake, lake.table_uri("silver", "twitter_media")).collect().height >= 1
    rules = scan(lake, lake.table_uri("silver", "twitter_matching_rules")).collect()
    assert set(rules["rule_tag"]) == {"films", "films in portuguese"}
    text = demo.summary(lake)
    sentiment = scan(lake, lake.table_uri("silver", "twitter_sentiment")).collect()
    for label, count in sentiment.group_by("sentiment_label").len().iter_rows():
        assert label in text and str(count) in text
    assert pl.Series(sentiment["sentiment_label"]).is_in(["Negative", "Neutral", "Positive"]).all()
