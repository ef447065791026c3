"""Source fidelity: what API v2 says about a tweet reaches silver, at the grain it says it.

Fixtures are real-format answers: a recent-search page with the referenced-tweet, media and
mention expansions (``search_page_expansions.json``: a retweet of a long post, a quote, an
edited post and its edit, a photo, a reply with a video, a mention without ``id``, and two
tweets whose ids are not tweet ids), and filtered-stream lines with ``matching_rules``
(``stream_filtered.ndjson``: a second edit of that post, a reply carrying the quote again in
``includes.tweets``).
"""

import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from lakehouse.definitions import defs
from lakehouse.defs.gold.assets import gold_dbt_models, gold_selection
from lakehouse.defs.twitter.assets import twitter_bronze, twitter_silver
from lakehouse.lake.location import Lake
from lakehouse.lake.resource import LakeResource
from lakehouse.sources.twitter import decode_records, records_of_file, stream_key
from lakehouse.transforms.sentiment import clean_text_py, reference_sentiment
from lakehouse.transforms.twitter import (
    TWEETS_SCHEMA,
    bronze_records,
    quarantine_records,
    silver_tweets,
    tweets_to_upsert,
)
from lakehouse_tests.twitter.test_pipeline import LANDED, land, table, tick

FIXTURES = Path(__file__).parents[1] / "fixtures" / "twitter"
PAGE = json.loads((FIXTURES / "search_page_expansions.json").read_text(encoding="utf-8"))
STREAM = [json.loads(line) for line in
          (FIXTURES / "stream_filtered.ndjson").read_text(encoding="utf-8").splitlines() if line]
T0 = PAGE["includes"]["tweets"][0]  # StudioNews' long post, seen only through references
T8, T1, T2, _, _, T3, T4, T5 = (t.get("id") for t in PAGE["data"])
T9, T10 = (line["data"]["id"] for line in STREAM)
ANA, JOE, STUDIO = (u["id"] for u in PAGE["includes"]["users"])


@pytest.fixture(autouse=True)
def _no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWITTER_BEARER_TOKEN", raising=False)


def run_files(instance: dg.DagsterInstance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    result = dg.materialize([twitter_bronze, twitter_silver], instance=instance,
                            run_config=request.run_config, resources={"lake": LakeResource()})
    assert result.success
    return result


def metadata(result: dg.ExecuteInProcessResult, *path: str) -> dict:
    [event] = [e for e in result.get_asset_materialization_events()
               if e.asset_key == dg.AssetKey(list(path))]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def rows_by_id(frame: pl.DataFrame) -> dict[str, dict]:
    return {row["id"]: row for row in frame.iter_rows(named=True)}


def test_search_page_with_expansions_keeps_what_the_api_says(lake: Lake) -> None:
    key = land(lake, "search_page_expansions.json", 0)
    instance = dg.DagsterInstance.ephemeral()
    [request] = tick(instance, None).run_requests
    result = run_files(instance, request)

    # Two tweets whose ids are not tweet ids are quarantined alone; the page's others load.
    quarantine = table(lake, "quarantine", "twitter_quarantine").sort("json_path")
    assert quarantine.select("json_path", "tweet_id").rows() == [
        ("$.data[3]", "abc"), ("$.data[4]", "12345678901234567890123")]
    assert all("1-19 digit integer" in r for r in quarantine["reason"])
    assert set(quarantine["record"]) == {lake.read_bytes(key).decode()}  # the page as landed
    assert metadata(result, "quarantine", "twitter_quarantine")["quarantined_this_run"] == 2
    assert table(lake, "bronze", "twitter_records")["tweet_count"].to_list() == [6]

    tweets = rows_by_id(table(lake, "silver", "twitter_tweets"))
    assert set(tweets) == {T8, T1, T2, T3, T4, T5, T0["id"]}
    # includes.tweets are tweets in their own right, marked; a tweet in both data and
    # includes (T5, replied to by T8) counts as seen directly.
    assert {i for i, t in tweets.items() if t["seen_via_reference"]} == {T0["id"]}
    assert {t["collected_via"] for t in tweets.values()} == {"search"}
    assert tweets[T1]["source"] == "Twitter for iPhone"
    assert tweets[T0["id"]]["source"] == "Sprout Social"
    # A long post: the whole text from note_tweet, its hashtags past 280 characters too.
    assert tweets[T0["id"]]["text"] == T0["note_tweet"]["text"] != T0["text"]
    assert tweets[T0["id"]]["has_note_tweet"] and not tweets[T1]["has_note_tweet"]
    hashtags = table(lake, "silver", "twitter_hashtags").filter(pl.col("tweet_id") == T0["id"])
    assert hashtags.sort("position")["tag"].to_list() == ["DunePartThree", "cinema"]
    assert tweets[T1]["retweeted_id"] == T0["id"] and tweets[T2]["quoted_id"] == T0["id"]
    assert tweets[T8]["replied_to_id"] == T5
    # Edits: both versions are rows, linked.
    assert tweets[T3]["edit_of"] == T4 and tweets[T4]["edit_of"] is None
    assert tweets[T3]["latest_version_id"] == tweets[T4]["latest_version_id"] == T3
    assert tweets[T3]["edit_history_tweet_ids"] == [T4, T3]
    assert tweets[T5]["latest_version_id"] == T5
    # context_annotations, attachments and the media they name.
    assert [a["entity"]["name"] for a in tweets[T0["id"]]["context_annotations"]] == [
        "Dune: Part Three", "Denis Villeneuve"]
    assert tweets[T0["id"]]["context_annotations"][0]["domain"]["name"] == "Movie"
    assert tweets[T5]["media_keys"] == [f"3_{T5}"] and tweets[T8]["media_keys"] == [f"7_{T8}"]
    assert tweets[T0["id"]]["bookmark_count"] == 1500
    media = rows_by_id(table(lake, "silver", "twitter_media").rename({"media_key": "id"}))
    assert media[f"3_{T5}"]["type"] == "photo" and media[f"3_{T5}"]["alt_text"]
    assert (media[f"7_{T8}"]["duration_ms"], media[f"7_{T8}"]["view_count"]) == (14233, 311)
    # User fields the client asks for.
    users = rows_by_id(table(lake, "silver", "twitter_users"))
    assert users[JOE]["protected"] and not users[ANA]["protected"]
    assert users[ANA]["url"] == "https://t.co/AnaCine01" and users[JOE]["url"] is None
    assert (users[ANA]["verified_type"], users[STUDIO]["verified_type"]) == ("blue", "business")
    assert (users[STUDIO]["like_count"], users[STUDIO]["media_count"]) == (800, 21000)
    # A mention without "id" is resolved from includes.users by handle (case-insensitive).
    mentions = table(lake, "silver", "twitter_mentions")
    assert mentions.filter(pl.col("tweet_id") == T5).select("username", "user_id").rows() == [
        ("FilmBuff_Joe", JOE)]
    # A retweet is scored on its original's whole text, not on "RT @StudioNews: ...…".
    sentiment = rows_by_id(table(lake, "silver", "twitter_sentiment"))
    whole = clean_text_py(T0["note_tweet"]["text"])
    assert sentiment[T1]["clean_text"] == sentiment[T0["id"]]["clean_text"] == whole
    polarity, _, label = reference_sentiment(whole, "en")
    assert sentiment[T1]["polarity"] == pytest.approx(polarity, abs=1e-4)
    assert sentiment[T1]["sentiment_label"] == label


def test_stream_rules_edits_and_references_across_runs_and_gold_counts_once(lake: Lake) -> None:
    land(lake, "search_page_expansions.json", 0)
    land(lake, "stream_filtered.ndjson", 5)
    instance = dg.DagsterInstance.ephemeral()
    for request in sorted(tick(instance, None).run_requests, key=lambda r: r.run_key):
        run_files(instance, request)

    rules = table(lake, "silver", "twitter_matching_rules")
    assert sorted(rules.select("tweet_id", "rule_id", "rule_tag").rows()) == sorted([
        (T9, "1866916266197536768", "films"), (T10, "1866916266197536768", "films"),
        (T10, "1866916266197536770", "dune")])
    tweets = rows_by_id(table(lake, "silver", "twitter_tweets"))
    # A later run's second edit relinks the versions landed before it.
    assert {tweets[i]["latest_version_id"] for i in (T4, T3, T9)} == {T9}
    assert tweets[T9]["edit_of"] == T4 and tweets[T9]["collected_via"] == "stream"
    # The stream's reply carries T2 in includes.tweets: the direct sighting stays.
    assert not tweets[T2]["seen_via_reference"] and tweets[T2]["collected_via"] == "search"

    assert dg.materialize([gold_dbt_models], selection=gold_selection("twitter"),
                          instance=instance, resources=defs().resources).success
    # Each post once: T0 is only referenced, the three versions of T4's post count once.
    counted = {T8, T1, T2, T5, T9, T10}
    fct = table(lake, "gold", "fct_tweets")
    assert sorted(fct["id"]) == sorted(counted)
    assert fct.filter(pl.col("id") == T9)["version_count"].to_list() == [3]
    languages = table(lake, "gold", "twitter_tweets_by_language_per_day")
    assert dict(languages.select("lang", "tweet_count").iter_rows()) == {"en": 3, "pt": 3}
    assert table(lake, "gold", "twitter_most_active_authors")["tweet_count"].sum() == 6
    assert table(lake, "gold", "twitter_tweets_by_sentiment")["tweet_count"].sum() == 6
    hashtags = table(lake, "gold", "twitter_top_hashtags_per_day")
    assert hashtags.select("hashtag", "tweet_count").rows() == [("cinema", 1)]  # T5's, not T0's


def test_an_original_landing_after_its_edit_is_linked_to_it() -> None:
    def silver_of(name: str, lines: list[str]) -> pl.LazyFrame:
        records = records_of_file(stream_key(name, LANDED), "\n".join(lines).encode())
        return silver_tweets(bronze_records(decode_records(records).lazy()))

    edit = json.dumps({"data": {**STREAM[0]["data"]}})
    # The original as the stream saw it at posting time: its history is only itself.
    original = json.dumps({"data": {**PAGE["data"][6], "edit_history_tweet_ids": [T4]}})
    existing = silver_of("20261117T090000000000Z-1-0001.ndjson", [edit]).collect()
    assert existing.row(0, named=True)["latest_version_id"] == T9
    batch = silver_of("20261117T091000000000Z-1-0002.ndjson", [original])
    rows = rows_by_id(tweets_to_upsert(batch, existing.lazy()).collect())
    assert set(rows) == {T4} and rows[T4]["latest_version_id"] == T9
    assert tweets_to_upsert(batch, pl.LazyFrame(schema=TWEETS_SCHEMA)).collect()[
        "latest_version_id"].to_list() == [T4]


def test_bad_tweet_ids_quarantine_their_line_alone_and_the_run_succeeds(lake: Lake) -> None:
    good = [json.dumps(line) for line in STREAM] + [
        json.dumps({"data": PAGE["data"][0], "includes": PAGE["includes"]})]
    tweet = {"text": "t", "created_at": "2026-11-17T08:00:00.000Z", "lang": "en"}
    lines = [
        good[0],
        json.dumps({"data": {**tweet, "id": "abc"}}),
        good[1],
        json.dumps({"data": {**tweet, "id": "12345678901234567890123"}}),
        '{"data":{"id":12345678901234567890123,"text":"t","created_at":"2026-11-17T08:00:00.000Z"}}',
        json.dumps({"data": {**tweet, "id": "9999999999999999999"}}),  # 19 digits, > int64
        '{"data": {"id": "1", "text": "cut',
        '{"errors":[{"title":"operational-disconnect","detail":"reconnect"}]}',
        json.dumps({"data": {"id": "2122613209297846999", "text": "no date"}}),
        json.dumps({"data": {**tweet}}),
        good[2],
    ]
    assert len(lines) == 11
    key = stream_key("20261117T090000000000Z-1-0001.ndjson", LANDED)
    lake.write_bytes(key, ("\n".join(lines) + "\n").encode())
    instance = dg.DagsterInstance.ephemeral()
    [request] = tick(instance, None).run_requests
    for _ in range(2):  # a retry of the same file gives the same answer
        result = run_files(instance, request)
        assert metadata(result, "quarantine", "twitter_quarantine")["quarantined_this_run"] == 8
        assert metadata(result, "bronze", "twitter_records")["tweets"] == 3
    quarantine = table(lake, "quarantine", "twitter_quarantine").sort("_record_index")
    assert quarantine["_record_index"].to_list() == [1, 3, 4, 5, 6, 7, 8, 9]
    reasons = quarantine["reason"].to_list()
    assert all("1-19 digit integer" in r for r in reasons[:4])
    assert reasons[4:] == ["not valid JSON", "no tweet in the record: operational-disconnect",
                           "tweet without a v2 created_at", "tweet without id"]
    assert quarantine["record"].to_list() == [lines[i] for i in (1, 3, 4, 5, 6, 7, 8, 9)]
    assert sorted(table(lake, "silver", "twitter_tweets").filter(~pl.col("seen_via_reference"))["id"]) \
        == sorted([T9, T10, T8])


def test_tweet_ids_must_be_int64_integers_written_as_twitter_writes_them() -> None:
    ids = ["9223372036854775807", "9223372036854775808", "0123", "-5", "1.5", "12 ", "1"]
    lines = [json.dumps({"data": {"id": i, "text": "t", "created_at": "2026-11-17T08:00:00.000Z"}})
             for i in ids]
    records = decode_records(records_of_file(
        stream_key("20261117T090000000000Z-1-0001.ndjson", LANDED), "\n".join(lines).encode()))
    kept = bronze_records(records.lazy()).collect()["newest_id"].to_list()
    assert sorted(kept) == ["1", "9223372036854775807"]
    rejected = quarantine_records(records.lazy()).collect()
    assert sorted(rejected["tweet_id"]) == sorted(ids[1:6])
