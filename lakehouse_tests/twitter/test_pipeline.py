"""The Twitter pipeline end to end: raw v2 payloads in, silver and gold rows out."""

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from lakehouse.definitions import defs
from lakehouse.defs.gold.assets import gold_dbt_models, gold_selection
from lakehouse.defs.twitter.assets import twitter_bronze, twitter_silver
from lakehouse.defs.twitter.sensors import twitter_raw_file_sensor
from lakehouse.lake.delta import scan
from lakehouse.lake.location import Lake
from lakehouse.lake.resource import LakeResource
from lakehouse.sources.twitter import search_key, stream_key
from lakehouse.transforms.sentiment import clean_text_py, reference_sentiment

FIXTURES = Path(__file__).parents[1] / "fixtures" / "twitter"
LANDED = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWITTER_BEARER_TOKEN", raising=False)


def land(lake: Lake, name: str, minute: int, data: bytes | None = None) -> str:
    """Land fixture ``name`` (or ``data`` under its kind) at 09:``minute``; returns its key."""
    data = data if data is not None else (FIXTURES / name).read_bytes()
    moment = LANDED.replace(minute=minute)
    if not name.endswith(".ndjson"):
        meta = json.loads(data)["meta"]
        key = search_key(moment, meta["newest_id"], meta["oldest_id"])
    else:
        key = stream_key(f"{moment:%Y%m%dT%H%M%S%fZ}-1-{minute:04d}.ndjson", moment)
    lake.write_bytes(key, data)
    return key


def fixture_tweets(*names: str) -> dict[str, dict]:
    tweets = {}
    for name in names:
        text = (FIXTURES / name).read_text(encoding="utf-8")
        if not name.endswith(".ndjson"):
            for tweet in json.loads(text)["data"]:
                tweets[tweet["id"]] = tweet
        else:
            for line in text.splitlines():
                if line.strip():
                    tweet = json.loads(line)["data"]
                    tweets[tweet["id"]] = tweet
    return tweets


def tick(instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      resources={"lake": LakeResource()})
    return twitter_raw_file_sensor(context)


def run(instance: dg.DagsterInstance, request: dg.RunRequest) -> None:
    result = dg.materialize([twitter_bronze, twitter_silver], instance=instance,
                            run_config=request.run_config, resources={"lake": LakeResource()})
    assert result.success


def table(lake: Lake, layer: str, name: str) -> pl.DataFrame:
    return scan(lake, lake.table_uri(layer, name)).collect()


def test_sensor_requests_each_new_file_once_across_ticks(lake: Lake) -> None:
    instance = dg.DagsterInstance.ephemeral()
    page_1 = land(lake, "search_page_1.json", 0)
    batch = land(lake, "stream.ndjson", 1)

    first = tick(instance, None)
    assert sorted(r.run_key for r in first.run_requests) == sorted([page_1, batch])
    for request in first.run_requests:
        ops = request.run_config["ops"]
        assert ops["twitter_bronze"]["config"]["files"] == [request.run_key]
        assert ops["twitter_silver"]["config"]["files"] == [request.run_key]

    again = tick(instance, first.cursor)
    assert again.run_requests == [] or again.run_requests is None

    page_2 = land(lake, "search_page_2.json", 5)
    third = tick(instance, first.cursor)
    assert [r.run_key for r in third.run_requests] == [page_2]
    assert not tick(instance, third.cursor).run_requests


def test_one_row_per_tweet_across_search_and_stream_and_reruns_change_nothing(
        lake: Lake) -> None:
    instance = dg.DagsterInstance.ephemeral()
    for name, minute in (("search_page_1.json", 0), ("stream.ndjson", 1),
                         ("search_page_2.json", 5)):
        land(lake, name, minute)
    requests = tick(instance, None).run_requests
    for request in requests:
        run(instance, request)

    expected = fixture_tweets("search_page_1.json", "search_page_2.json", "stream.ndjson")
    tweets = table(lake, "silver", "twitter_tweets")
    assert sorted(tweets["id"]) == sorted(expected)  # the stream repeats 5 of page 1
    in_both = set(fixture_tweets("stream.ndjson")) & set(fixture_tweets("search_page_1.json"))
    assert in_both and set(tweets.filter(pl.col("id").is_in(in_both))["collected_via"]) == {"stream"}

    before = {name: table(lake, layer, name).height for layer, name in (
        ("bronze", "twitter_records"), ("silver", "twitter_tweets"), ("silver", "twitter_hashtags"),
        ("silver", "twitter_sentiment"), ("silver", "twitter_users"))}
    for request in requests:  # a re-run of every file, as after a lost cursor
        run(instance, request)
    after = {name: table(lake, layer, name).height for layer, name in (
        ("bronze", "twitter_records"), ("silver", "twitter_tweets"), ("silver", "twitter_hashtags"),
        ("silver", "twitter_sentiment"), ("silver", "twitter_users"))}
    assert after == before

    row = tweets.filter(pl.col("id") == next(iter(in_both))).row(0, named=True)
    source = expected[row["id"]]
    assert row["text"] == source["text"] and row["lang"] == source["lang"]
    assert row["created_at"] == datetime.fromisoformat(source["created_at"])
    assert row["date"] == row["created_at"].date()
    retweets = {i for i, t in expected.items()
                if any(r["type"] == "retweeted" for r in t.get("referenced_tweets", []))}
    assert set(tweets.filter("is_retweet")["id"]) == retweets
    placed = tweets.filter(pl.col("place_id").is_not_null())
    assert placed.height >= 1 and placed["country_code"].is_not_null().all()
    hashtags = table(lake, "silver", "twitter_hashtags")
    assert hashtags.height == sum(len(t.get("entities", {}).get("hashtags", []))
                                  for t in expected.values())


def test_malformed_lines_go_to_quarantine_and_the_rest_to_bronze(lake: Lake) -> None:
    good = [line for line in (FIXTURES / "stream.ndjson").read_text().splitlines() if line]
    body = "\r\n".join([good[0], '{"data": {"id": "1", "text": "cut', "", good[1],
                        '{"errors":[{"title":"operational-disconnect","detail":"reconnect"}]}',
                        '{"data":{"id":"42","text":"no date"}}', good[2]]) + "\r\n"
    key = stream_key("20261117T090000000000Z-1-0001.ndjson", LANDED)
    lake.write_bytes(key, body.encode())
    instance = dg.DagsterInstance.ephemeral()
    run(instance, tick(instance, None).run_requests[0])

    quarantine = table(lake, "quarantine", "twitter_quarantine").sort("_record_index")
    assert quarantine["_record_index"].to_list() == [1, 4, 5]
    reasons = quarantine["reason"].to_list()
    assert reasons[0] == "not valid JSON"
    assert reasons[1] == "no tweet in the record: operational-disconnect"
    assert "created_at" in reasons[2]
    assert quarantine["record"][0] == '{"data": {"id": "1", "text": "cut'
    assert set(quarantine["_source_file"]) == {key}
    bronze = table(lake, "bronze", "twitter_records")
    assert sorted(bronze["_record_index"]) == [0, 3, 6]
    assert table(lake, "silver", "twitter_tweets").height == 3


def test_gold_matches_an_independent_computation(lake: Lake) -> None:
    instance = dg.DagsterInstance.ephemeral()
    for name, minute in (("search_page_1.json", 0), ("stream.ndjson", 1),
                         ("search_page_2.json", 5)):
        land(lake, name, minute)
    for request in tick(instance, None).run_requests:
        run(instance, request)
    result = dg.materialize([gold_dbt_models], selection=gold_selection("twitter"),
                            instance=instance, resources=defs().resources)
    assert result.success

    # Plain Python over the raw fixtures, with the libraries themselves scoring.
    tweets = fixture_tweets("search_page_1.json", "search_page_2.json", "stream.ndjson")
    labels: Counter[str] = Counter()
    per_hour: Counter[tuple[datetime, str]] = Counter()
    per_lang: Counter[tuple[str, str]] = Counter()
    for tweet in tweets.values():
        created = datetime.fromisoformat(tweet["created_at"])
        per_lang[(created.date().isoformat(), tweet["lang"])] += 1
        if tweet["lang"] in ("en", "pt"):
            label = reference_sentiment(clean_text_py(tweet["text"]), tweet["lang"])[2]
            labels[label] += 1
            per_hour[(created.replace(minute=0, second=0, microsecond=0, tzinfo=None),
                      label)] += 1

    by_sentiment = table(lake, "gold", "twitter_tweets_by_sentiment")
    assert dict(by_sentiment.iter_rows()) == {k: labels.get(k, 0)
                                              for k in ("Negative", "Neutral", "Positive")}
    assert by_sentiment.schema["tweet_count"] == pl.Int64
    hourly = table(lake, "gold", "twitter_tweets_per_hour_by_sentiment")
    assert hourly.schema["hour"] == pl.Datetime("us")
    assert {(h, s): c for h, s, c in hourly.iter_rows()} == dict(per_hour)
    languages = table(lake, "gold", "twitter_tweets_by_language_per_day")
    assert {(d.isoformat(), lang): c for d, lang, c in
            languages.select("date", "lang", "tweet_count").iter_rows()} == dict(per_lang)
    authors = table(lake, "gold", "twitter_most_active_authors")
    assert authors["tweet_count"].sum() == len(tweets)
    assert table(lake, "gold", "twitter_top_hashtags_per_day").height >= 1


def test_twitter_assets_automation_and_lineage_are_registered() -> None:
    repo = defs().get_repository_def()
    graph = repo.asset_graph
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"raw/twitter/search", "raw/twitter/stream", "bronze/twitter_records",
            "quarantine/twitter_quarantine", "silver/twitter_tweets", "silver/twitter_users",
            "silver/twitter_hashtags", "silver/twitter_mentions", "silver/twitter_urls",
            "silver/twitter_sentiment", "silver/twitter_media", "silver/twitter_matching_rules",
            "gold/fct_tweets", "gold/twitter_tweets_by_sentiment",
            "gold/twitter_tweets_per_hour_by_sentiment", "gold/twitter_top_hashtags_per_day",
            "gold/twitter_tweets_by_language_per_day", "gold/twitter_tweets_by_country_per_day",
            "gold/twitter_most_active_authors"} <= keys
    assert dg.AssetKey(["silver", "twitter_sentiment"]) in \
        graph.get(dg.AssetKey(["gold", "twitter_tweets_by_sentiment"])).parent_keys
    assert dg.AssetKey(["gold", "fct_tweets"]) in \
        graph.get(dg.AssetKey(["gold", "twitter_tweets_by_language_per_day"])).parent_keys
    assert repo.get_schedule_def("twitter_search_schedule").cron_schedule == "*/5 * * * *"
    assert {"twitter_raw_file_sensor", "gold_automation_sensor"} <= \
        {s.name for s in repo.sensor_defs}


def test_the_same_pipeline_runs_on_s3(s3_lake: Lake) -> None:
    instance = dg.DagsterInstance.ephemeral()
    land(s3_lake, "search_page_1.json", 0)
    land(s3_lake, "stream.ndjson", 1)
    requests = tick(instance, None).run_requests
    assert len(requests) == 2
    for request in requests:
        run(instance, request)
    expected = fixture_tweets("search_page_1.json", "stream.ndjson")
    assert sorted(table(s3_lake, "silver", "twitter_tweets")["id"]) == sorted(expected)
    assert table(s3_lake, "silver", "twitter_sentiment").height == sum(
        t["lang"] in ("en", "pt") for t in expected.values())
