"""Batch after batch: what a stream batch writes to silver is its own tweets, so a batch costs
the same however much of the day silver already holds."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from lakehouse.lake.delta import scan
from lakehouse.lake.location import Lake
from lakehouse.lake.maintenance import maintain_table
from lakehouse.load.twitter import HASHTAGS, SENTIMENT, TWEETS, load_bronze, load_silver
from lakehouse.sources.twitter import stream_key

FIXTURES = Path(__file__).parents[1] / "fixtures" / "twitter"
LINES = [json.loads(line) for line in
         (FIXTURES / "stream.ndjson").read_text(encoding="utf-8").splitlines() if line]
ORIGINAL = LINES[3]  # Bruno's post with #cinema
RETWEET = LINES[4]  # Grace's retweet of it


def load_batch(lake: Lake, minute: int, lines: list[dict]) -> None:
    moment = datetime(2026, 11, 17, 9, minute, tzinfo=UTC)
    key = stream_key(f"{moment:%Y%m%dT%H%M%S%fZ}-1-{minute:04d}.ndjson", moment)
    lake.write_bytes(key, ("\n".join(json.dumps(line) for line in lines) + "\n").encode())
    load_bronze(lake, [key])
    load_silver(lake, [key])


def data_files(lake: Lake, table: tuple[str, str]) -> set[str]:
    actions = pa.table(DeltaTable(lake.table_uri(*table)).get_add_actions(flatten=True))
    return set(actions.column("path").to_pylist())


def test_a_tweet_seen_again_through_a_reference_keeps_its_rows_and_their_files(
        lake: Lake) -> None:
    original_id = ORIGINAL["data"]["id"]
    load_batch(lake, 0, [ORIGINAL])
    before = {table: data_files(lake, table) for table in (TWEETS, HASHTAGS, SENTIMENT)}
    # The stream's referenced_tweets.id expansion carries the original again.
    retweet = {**RETWEET, "includes": {**RETWEET["includes"], "tweets": [ORIGINAL["data"]]}}
    load_batch(lake, 1, [retweet])

    for table, files in before.items():
        assert files <= data_files(lake, table), f"{table} rewrote the first batch's files"
    hashtags = scan(lake, lake.table_uri(*HASHTAGS)).collect()
    assert hashtags.filter(pl.col("tweet_id") == original_id)["tag"].to_list() == ["cinema"]
    sentiment = scan(lake, lake.table_uri(*SENTIMENT)).collect()
    scores = dict(sentiment.select("id", "polarity").iter_rows())
    assert set(scores) == {original_id, RETWEET["data"]["id"]}
    # A retweet is scored on its original's text.
    assert scores[RETWEET["data"]["id"]] == scores[original_id]


def _post(n: int, likes: int = 0) -> dict:
    """A post ``n`` minutes after the fixture's, with its own (later) snowflake id."""
    line = LINES[1]
    tweet_id = str(int(line["data"]["id"]) + n * (60_000 << 22))
    created = datetime.fromisoformat(line["data"]["created_at"]) + timedelta(minutes=n)
    data = {**line["data"], "id": tweet_id, "conversation_id": tweet_id,
            "edit_history_tweet_ids": [tweet_id],
            "created_at": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "public_metrics": {**line["data"]["public_metrics"], "like_count": likes}}
    return {**line, "data": data}


def test_updating_an_earlier_batchs_tweet_does_not_fold_new_tweets_into_its_file(
        lake: Lake) -> None:
    # Every batch sees the previous batch's post again (its metrics grew) and a new post. The
    # update rewrites the earlier file; the new posts must not ride along into it, or that
    # file grows batch after batch and each batch rewrites all of it.
    load_batch(lake, 0, [_post(0), _post(1)])
    for n in range(1, 7):
        load_batch(lake, n, [_post(n, likes=1000 + n), _post(n + 1)])

    tweets = scan(lake, lake.table_uri(*TWEETS)).collect()
    assert tweets.height == tweets.get_column("id").n_unique() == 8
    likes = dict(tweets.select("id", "like_count").iter_rows())
    assert [likes[_post(n)["data"]["id"]] for n in range(8)] == [0, *range(1001, 1007), 0]
    rows = pa.table(DeltaTable(lake.table_uri(*TWEETS)).get_add_actions(flatten=True))
    assert max(rows.column("num_records").to_pylist()) <= 2, rows.column("num_records")


def test_a_silver_table_that_cannot_be_written_fails_the_load_and_a_rerun_completes_it(
        lake: Lake) -> None:
    """The silver tables are written beside other work: a write that fails on its thread still
    fails the load (its error is not lost), and the rerun writes every table once."""
    moment = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)
    key = stream_key(f"{moment:%Y%m%dT%H%M%S%fZ}-1-0000.ndjson", moment)
    lake.write_bytes(key, ("\n".join(json.dumps(line) for line in LINES) + "\n").encode())
    load_bronze(lake, [key])
    blocked = Path(lake.table_uri(*HASHTAGS))  # storage refusing one table: a file in its place
    blocked.parent.mkdir(parents=True, exist_ok=True)
    blocked.write_text("not a table")

    with pytest.raises(DeltaError, match="twitter_hashtags"):
        load_silver(lake, [key])

    blocked.unlink()
    load = load_silver(lake, [key])
    hashtags = scan(lake, lake.table_uri(*HASHTAGS)).collect()
    assert hashtags.height == load.rows[HASHTAGS].height > 0
    assert not hashtags.select("tweet_id", "position").is_duplicated().any()
    tweets = scan(lake, lake.table_uri(*TWEETS)).collect()
    assert tweets.height == load.tweets.height
    assert not tweets.get_column("id").is_duplicated().any()
    sentiment = scan(lake, lake.table_uri(*SENTIMENT)).collect()
    assert 0 < sentiment.height == load.sentiment.height


def test_an_edit_after_midnight_relinks_its_original_beside_a_retweet_of_an_old_post(
        lake: Lake) -> None:
    # Silver is searched for the other versions of a batch's edit chains day by day, from
    # each day's lowest chain id: a retweet of a weeks-old post must not widen today's search,
    # and an edit just after midnight must still find its original in yesterday's files.
    original = _post(180)  # 23:52
    load_batch(lake, 0, [_post(0), _post(100), original])
    maintain_table(lake, lake.table_uri(*TWEETS), retention_hours=0)
    original_id = original["data"]["id"]
    edit = _post(193)  # 00:05 the next day
    edit_id = edit["data"]["id"]
    edit["data"]["edit_history_tweet_ids"] = [original_id, edit_id]
    old = _post(-40 * 24 * 60)["data"]
    retweet = _post(194)
    retweet["data"] = {**retweet["data"], "text": f"RT @dkim_films: {old['text']}",
                       "referenced_tweets": [{"type": "retweeted", "id": old["id"]}]}
    retweet["includes"] = {**retweet["includes"], "tweets": [old]}
    load_batch(lake, 1, [edit, retweet])

    tweets = scan(lake, lake.table_uri(*TWEETS)).collect()
    assert tweets.height == tweets.get_column("id").n_unique() == 6
    rows = {row["id"]: row for row in tweets.iter_rows(named=True)}
    assert rows[original_id]["latest_version_id"] == edit_id
    assert rows[edit_id]["edit_of"] == original_id
    assert rows[edit_id]["date"] == rows[original_id]["date"] + timedelta(days=1)
    assert rows[old["id"]]["seen_via_reference"]


def test_a_silver_load_opens_each_table_once_and_hands_it_on_as_written(
        lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every open of a Delta table lists its whole log on a local lake (a day of 5-minute
    # commits: 300-600 files): the load opens each table once, merges through it (tweets and
    # hashtags merge twice here: new rows, then rows silver already holds) and hands it on
    # for the asset's report, as its last commit left it.
    load_batch(lake, 0, [_post(0), ORIGINAL])
    moment = datetime(2026, 11, 17, 9, 1, tzinfo=UTC)
    key = stream_key(f"{moment:%Y%m%dT%H%M%S%fZ}-1-0001.ndjson", moment)
    lake.write_bytes(key, (json.dumps(_post(0, likes=5)) + "\n" + json.dumps(ORIGINAL) + "\n"
                           + json.dumps(_post(1)) + "\n").encode())
    load_bronze(lake, [key])
    opened: list[str] = []
    real_init = DeltaTable.__init__

    def counting_init(self: DeltaTable, table_uri: object, *args: object, **kwargs: object) -> None:
        opened.append(str(table_uri))
        real_init(self, table_uri, *args, **kwargs)

    monkeypatch.setattr(DeltaTable, "__init__", counting_init)
    load = load_silver(lake, [key])
    monkeypatch.undo()

    silver = [lake.table_uri(*table) for table in load.tables]
    assert {uri: opened.count(uri) for uri in silver} == dict.fromkeys(silver, 1)
    for table, written in load.tables.items():
        fresh = DeltaTable(lake.table_uri(*table))
        assert written.version() == fresh.version(), table
    tweets = scan(lake, lake.table_uri(*TWEETS)).collect()
    assert tweets.height == tweets.get_column("id").n_unique() == 3
    likes = dict(tweets.select("id", "like_count").iter_rows())
    assert likes[_post(0)["data"]["id"]] == 5
    hashtags = scan(lake, lake.table_uri(*HASHTAGS)).collect()
    assert hashtags.filter(pl.col("tweet_id") == ORIGINAL["data"]["id"])["tag"].to_list() == [
        "cinema"]
    versions = [c for c in DeltaTable(lake.table_uri(*TWEETS)).history(2)
                if c.get("operation") == "MERGE"]
    assert len(versions) == 2  # the new rows and the known ones, in commits of their own


def test_a_clean_batch_commits_nothing_to_quarantine_and_a_fixed_file_clears_its_rows(
        lake: Lake) -> None:
    # Quarantine is replaced per raw file like bronze, but a batch with nothing to quarantine
    # (nearly every batch) leaves it alone: an empty commit each batch is one more file in a
    # log every open and commit lists. A file re-landed without its bad line still clears
    # the rows it had quarantined.
    quarantine = lake.table_uri("quarantine", "twitter_quarantine")
    moment = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)
    bad = stream_key(f"{moment:%Y%m%dT%H%M%S%fZ}-1-0000.ndjson", moment)
    lake.write_bytes(bad, (json.dumps(_post(0)) + '\n{"data": {"id": "1", "text": "cut\n').encode())
    load_bronze(lake, [bad])
    assert scan(lake, quarantine).collect()["_source_file"].to_list() == [bad]
    version = DeltaTable(quarantine).version()

    for n in range(1, 4):
        load_batch(lake, n, [_post(n)])
    assert DeltaTable(quarantine).version() == version
    assert scan(lake, quarantine).collect()["_source_file"].to_list() == [bad]

    lake.write_bytes(bad, (json.dumps(_post(0)) + "\n").encode())
    load_bronze(lake, [bad])
    assert scan(lake, quarantine).collect().is_empty()
    assert scan(lake, lake.table_uri("bronze", "twitter_records")).collect().height == 4
