"""``lakehouse sql``: DuckDB SQL over the lake's Delta tables named ``<layer>.<table>``."""

import csv
import io
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from lakehouse.cli import main
from lakehouse.lake.delta import overwrite_table
from lakehouse.lake.location import Lake
from lakehouse.sqlshell import discover_tables

TWEETS = pl.DataFrame({
    "id": ["1001", "1002", "1003"],
    "text": ["bom dia", "hello | world", "ótimo 😀"],
    "created_at": [datetime(2026, 11, 23, 9, 5, tzinfo=UTC), datetime(2026, 11, 23, 9, 40, tzinfo=UTC),
                   datetime(2026, 11, 23, 10, 1, tzinfo=UTC)],
    "lang": ["pt", "en", "pt"],
    "is_retweet": [False, True, None],
})
BY_SENTIMENT = pl.DataFrame({"sentiment_label": ["Negative", "Neutral", "Positive"],
                             "tweet_count": [4, 7, 12]})


def fill(lake: Lake) -> None:
    overwrite_table(lake, lake.table_uri("silver", "twitter_tweets"), TWEETS)
    overwrite_table(lake, lake.table_uri("gold", "twitter_tweets_by_sentiment"), BY_SENTIMENT)
    overwrite_table(lake, lake.table_uri("quarantine", "twitter_quarantine"),
                    pl.DataFrame({"_source_file": ["raw/x.json"], "reason": ["bad json"]}))


def sql(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["sql", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_tables_are_discovered_per_layer_from_their_delta_logs(lake: Lake) -> None:
    fill(lake)
    (Path(lake.root) / "silver" / "not_a_table").mkdir(parents=True)  # no _delta_log: skipped
    assert list(discover_tables(lake)) == [
        "gold.twitter_tweets_by_sentiment", "quarantine.twitter_quarantine", "silver.twitter_tweets"]


def test_query_joins_layers_and_prints_json(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    fill(lake)
    code, out, err = sql(capsys, "SELECT t.lang, count(*) AS n, max(g.tweet_count) AS positives "
                                 "FROM silver.twitter_tweets t, gold.twitter_tweets_by_sentiment g "
                                 "WHERE g.sentiment_label = 'Positive' GROUP BY 1 ORDER BY 1",
                         "--format", "json")
    assert (code, err) == (0, "")
    assert json.loads(out) == [{"lang": "en", "n": 1, "positives": 12},
                               {"lang": "pt", "n": 2, "positives": 12}]


def test_timestamps_are_shown_in_utc_and_csv_round_trips(lake: Lake,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    fill(lake)
    code, out, _ = sql(capsys, "select id, text, created_at, is_retweet from silver.twitter_tweets "
                               "order by id", "--format", "csv")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["id", "text", "created_at", "is_retweet"]
    assert rows[1:] == [["1001", "bom dia", "2026-11-23T09:05:00+00:00", "false"],
                        ["1002", "hello | world", "2026-11-23T09:40:00+00:00", "true"],
                        ["1003", "ótimo 😀", "2026-11-23T10:01:00+00:00", ""]]


def test_text_output_is_an_aligned_table_with_a_row_count(lake: Lake,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    fill(lake)
    code, out, _ = sql(capsys, "select * from gold.twitter_tweets_by_sentiment order by tweet_count desc")
    assert code == 0
    assert out.splitlines() == [
        "sentiment_label | tweet_count",
        "----------------+------------",
        "Positive        |          12",
        "Neutral         |           7",
        "Negative        |           4",
        "(3 rows)",
    ]


def test_unknown_table_prints_one_line_naming_it_and_fails(lake: Lake,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    fill(lake)
    code, out, err = sql(capsys, "select * from silver.twitter_tweetz")
    assert code == 1 and out == ""
    assert err.count("\n") == 1
    assert err == "error: unknown table silver.twitter_tweetz (did you mean silver.twitter_tweets?)\n"
    code, _, err = sql(capsys, "select * from gold.nothing_like_it")
    assert (code, err) == (1, "error: unknown table gold.nothing_like_it "
                              "(gold has: gold.twitter_tweets_by_sentiment)\n")
    code, _, err = sql(capsys, "select * from twitter_tweets")
    assert code == 1
    assert err == ("error: Catalog Error: Table with name twitter_tweets does not exist! "
                   "(tables are named <layer>.<table>: silver.twitter_tweets)\n")


def test_bad_query_prints_one_line_and_fails(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    fill(lake)
    code, out, err = sql(capsys, "selec * from gold.twitter_tweets_by_sentiment")
    assert code == 1 and out == ""
    assert err == 'error: Parser Error: syntax error at or near "selec"\n'
    code, _, err = sql(capsys, "select nope from gold.twitter_tweets_by_sentiment")
    assert code == 1 and err.count("\n") == 1 and "nope" in err


def test_only_the_tables_a_query_names_are_opened(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    fill(lake)
    broken = Path(lake.root) / "silver" / "broken" / "_delta_log"
    broken.mkdir(parents=True)
    (broken / "00000000000000000000.json").write_text("not a delta log\n")
    code, out, _ = sql(capsys, "select sum(tweet_count) as total from gold.twitter_tweets_by_sentiment",
                       "--format", "json")
    assert (code, json.loads(out)) == (0, [{"total": 23}])
    code, _, err = sql(capsys, "select * from silver.broken")
    assert code == 1 and err.startswith("error: cannot open silver.broken") and err.count("\n") == 1


def test_show_all_tables_lists_every_layer(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    fill(lake)
    code, out, _ = sql(capsys, "select schema_name || '.' || view_name as t from duckdb_views() "
                               "where not internal and schema_name <> 'main' order by 1", "--format", "json")
    assert code == 0
    assert [r["t"] for r in json.loads(out)] == [
        "gold.twitter_tweets_by_sentiment", "quarantine.twitter_quarantine", "silver.twitter_tweets"]


def test_console_script_exit_code_and_stderr(lake: Lake) -> None:
    fill(lake)
    script = Path(sys.executable).parent / "lakehouse"
    ok = subprocess.run([str(script), "sql", "select count(*) as n from silver.twitter_tweets",
                         "--format", "csv"],
                        capture_output=True, text=True, timeout=120)
    assert (ok.returncode, ok.stdout) == (0, "n\n3\n")
    piped = subprocess.run([str(script), "sql", "-", "--format", "json"], input="select 1 as one\n",
                           capture_output=True, text=True, timeout=120)
    assert (piped.returncode, json.loads(piped.stdout)) == (0, [{"one": 1}])
    bad = subprocess.run([str(script), "sql", "select * from gold.nothing_here"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.strip().splitlines()[-1].startswith("error: unknown table gold.nothing_here")


def test_sql_over_an_s3_lake(s3_lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    fill(s3_lake)
    assert "silver.twitter_tweets" in discover_tables(s3_lake)
    code, out, err = sql(capsys,
                         "select lang, count(*) as n from silver.twitter_tweets group by 1 order by 1",
                         "--format", "json")
    assert (code, err) == (0, "")
    assert json.loads(out) == [{"lang": "en", "n": 1}, {"lang": "pt", "n": 2}]
