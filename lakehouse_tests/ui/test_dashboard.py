"""The live dashboard: gold Delta tables -> /api/summary -> the page in headless Chromium."""

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
import requests
from deltalake import DeltaTable

from lakehouse.dashboard.queries import read_summary
from lakehouse.dashboard.server import DashboardServer
from lakehouse.lake.delta import overwrite_table, replace_partitions
from lakehouse.lake.location import Lake
from lakehouse_tests.ui.browser import Browser

READ_NUMBERS = """
const value = id => { const e = document.getElementById(id); return e ? e.dataset.value : null; };
return {loaded: Number(document.body.dataset.loaded), version: document.body.dataset.version,
        total: document.getElementById("total").textContent, total_value: value("total"),
        negative: value("count-Negative"), neutral: value("count-Neutral"), positive: value("count-Positive"),
        positive_text: (document.getElementById("count-Positive") || {}).textContent,
        lines: [...document.querySelectorAll("#chart polyline")].map(p => p.dataset.label),
        points: document.querySelectorAll("#chart circle").length,
        status: document.getElementById("status").textContent};
"""


def write_gold(lake: Lake, counts: dict[str, int], hourly: list[tuple[str, str, int]]) -> None:
    overwrite_table(lake, lake.table_uri("gold", "twitter_tweets_by_sentiment"), pl.DataFrame(
        {"sentiment_label": list(counts), "tweet_count": list(counts.values())},
        schema={"sentiment_label": pl.String, "tweet_count": pl.Int64}))
    overwrite_table(lake, lake.table_uri("gold", "twitter_tweets_per_hour_by_sentiment"), pl.DataFrame(
        {"hour": [datetime.fromisoformat(h) for h, _, _ in hourly],
         "sentiment_label": [label for _, label, _ in hourly], "tweet_count": [n for _, _, n in hourly]},
        schema={"hour": pl.Datetime("us"), "sentiment_label": pl.String, "tweet_count": pl.Int64}))


def gold_versions(lake: Lake) -> dict[str, int]:
    """The Delta versions the page should report (a new table's first rows are its second commit:
    it is created empty first, see ensure_table)."""
    return {t: DeltaTable(lake.table_uri("gold", t)).version()
            for t in ("twitter_tweets_by_sentiment", "twitter_tweets_per_hour_by_sentiment")}


def shown_version(lake: Lake) -> str:
    return "/".join(str(v) for v in gold_versions(lake).values())


FIRST = {"Negative": 4, "Neutral": 7, "Positive": 12}
FIRST_HOURLY = [("2026-11-23 09:00", "Negative", 1), ("2026-11-23 09:00", "Positive", 5),
                ("2026-11-23 11:00", "Negative", 3), ("2026-11-23 11:00", "Neutral", 7),
                ("2026-11-23 11:00", "Positive", 7)]
SECOND = {"Negative": 40, "Neutral": 700, "Positive": 1260}
SECOND_HOURLY = [*FIRST_HOURLY, ("2026-11-23 12:00", "Negative", 36), ("2026-11-23 12:00", "Neutral", 693),
                 ("2026-11-23 12:00", "Positive", 1248)]


@pytest.fixture
def dashboard(lake: Lake) -> Iterator[DashboardServer]:
    server = DashboardServer(lake, "127.0.0.1", 0, refresh_seconds=0.5)
    server.start_in_thread()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_summary_holds_gold_counts_and_zero_filled_hours(lake: Lake) -> None:
    write_gold(lake, FIRST, FIRST_HOURLY)
    summary = read_summary(lake)
    assert summary["ready"] is True
    assert summary["total"] == 23
    assert summary["by_sentiment"] == FIRST
    assert summary["hours"] == ["2026-11-23T09:00:00Z", "2026-11-23T10:00:00Z", "2026-11-23T11:00:00Z"]
    assert summary["series"] == {"Negative": [1, 0, 3], "Neutral": [0, 0, 7], "Positive": [5, 0, 7]}
    assert summary["versions"] == gold_versions(lake)


def test_summary_reads_an_s3_lake(s3_lake: Lake) -> None:
    assert read_summary(s3_lake)["ready"] is False
    write_gold(s3_lake, FIRST, FIRST_HOURLY)
    summary = read_summary(s3_lake)
    assert (summary["total"], summary["by_sentiment"]) == (23, FIRST)
    assert summary["series"]["Positive"] == [5, 0, 7]


def test_summary_before_any_gold_table_is_empty_and_not_ready(lake: Lake) -> None:
    summary = read_summary(lake)
    assert (summary["ready"], summary["total"], summary["hours"]) == (False, 0, [])
    assert summary["by_sentiment"] == {"Negative": 0, "Neutral": 0, "Positive": 0}


def test_server_answers_page_and_json(lake: Lake, dashboard: DashboardServer) -> None:
    write_gold(lake, FIRST, FIRST_HOURLY)
    page = requests.get(dashboard.url, timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    # Self-contained: no script, style or image comes from elsewhere.
    assert "http://" not in page.text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page.text and "<script src" not in page.text
    assert requests.get(dashboard.url + "api/summary", timeout=10).json()["total"] == 23
    assert requests.get(dashboard.url + "nope", timeout=10).status_code == 404


def test_page_shows_gold_numbers_and_follows_a_new_gold_version(
        lake: Lake, dashboard: DashboardServer, browser: Browser, tmp_path: Path) -> None:
    write_gold(lake, FIRST, FIRST_HOURLY)
    browser.get(dashboard.url)
    first = browser.wait_for(READ_NUMBERS, lambda v: v["loaded"] >= 1)
    assert (first["total"], first["total_value"]) == ("23", "23")
    assert (first["negative"], first["neutral"], first["positive"]) == ("4", "7", "12")
    assert first["lines"] == ["Negative", "Neutral", "Positive"]
    assert first["points"] == 3 * 3  # three hours (10:00 filled with zeros) per label
    assert first["version"] == shown_version(lake)
    assert f"gold version {gold_versions(lake)['twitter_tweets_by_sentiment']}" in first["status"]

    # A new batch lands: the open page picks it up by itself, no reload.
    write_gold(lake, SECOND, SECOND_HOURLY)
    second = browser.wait_for(READ_NUMBERS, lambda v: v["version"] == shown_version(lake)
                              and v["total_value"] == "2000")
    assert second["total"] == "2,000"
    assert (second["negative"], second["neutral"], second["positive"]) == ("40", "700", "1260")
    assert second["positive_text"] == "1,260"
    assert second["points"] == 3 * 4
    browser.screenshot(tmp_path / "dashboard.png")


def test_page_waits_for_gold_then_shows_it(lake: Lake, dashboard: DashboardServer, browser: Browser) -> None:
    browser.get(dashboard.url)
    empty = browser.wait_for(READ_NUMBERS, lambda v: v["loaded"] >= 1)
    assert empty["total"] == "0" and "waiting for gold/twitter_tweets_by_sentiment" in empty["status"]
    write_gold(lake, FIRST, FIRST_HOURLY)
    shown = browser.wait_for(READ_NUMBERS, lambda v: v["total_value"] == "23")
    assert shown["positive"] == "12"


def test_dashboard_command_serves_on_the_port_it_prints(lake: Lake) -> None:
    write_gold(lake, FIRST, FIRST_HOURLY)
    script = Path(sys.executable).parent / "lakehouse"
    proc = subprocess.Popen([str(script), "dashboard", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("dashboard on http://127.0.0.1:")
        url = line.split()[2]
        assert json.loads(requests.get(url + "api/summary", timeout=10).text)["by_sentiment"] == FIRST
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0


# -- through the real Twitter pipeline -------------------------------------------------------------

TWITTER_FIXTURES = Path(__file__).parents[1] / "fixtures" / "twitter"


def test_open_page_shows_what_the_twitter_pipeline_lands(
        lake: Lake, dashboard: DashboardServer, browser: Browser, monkeypatch: pytest.MonkeyPatch) -> None:
    """Raw v2 payloads land, the sensor's runs reach silver, dbt builds gold: the open page shows it."""
    import dagster as dg
    from dagster_dbt import build_dbt_asset_selection

    from lakehouse.definitions import defs
    from lakehouse.defs.gold.assets import gold_dbt_models
    from lakehouse.defs.twitter.assets import twitter_bronze, twitter_silver
    from lakehouse.defs.twitter.sensors import twitter_raw_file_sensor
    from lakehouse.lake.delta import scan
    from lakehouse.lake.resource import LakeResource
    from lakehouse.sources.twitter import search_key, stream_key

    monkeypatch.delenv("TWITTER_BEARER_TOKEN", raising=False)
    # The two models the page reads (with their dbt tests), not all Twitter gold: half the dbt time.
    dashboard_models = build_dbt_asset_selection(
        [gold_dbt_models],
        dbt_select="fct_tweets twitter_tweets_by_sentiment twitter_tweets_per_hour_by_sentiment")
    instance = dg.DagsterInstance.ephemeral()
    landed = datetime.fromisoformat("2026-11-17T09:00:00+00:00")

    def land(name: str, minute: int) -> None:
        data = (TWITTER_FIXTURES / name).read_bytes()
        moment = landed.replace(minute=minute)
        if name.endswith(".ndjson"):
            key = stream_key(f"{moment:%Y%m%dT%H%M%S%fZ}-1-{minute:04d}.ndjson", moment)
        else:
            meta = json.loads(data)["meta"]
            key = search_key(moment, meta["newest_id"], meta["oldest_id"])
        lake.write_bytes(key, data)

    def process() -> None:
        """One sensor tick, its runs to silver, then the dashboard's gold models (as the gold sensor does)."""
        ticked = twitter_raw_file_sensor(dg.build_sensor_context(
            instance=instance, cursor=None, resources={"lake": LakeResource()}))
        assert ticked.run_requests
        for request in ticked.run_requests:
            assert dg.materialize([twitter_bronze, twitter_silver], instance=instance,
                                  run_config=request.run_config, resources={"lake": LakeResource()}).success
        assert dg.materialize([gold_dbt_models], selection=dashboard_models, instance=instance,
                              resources=defs().resources).success

    def gold_counts() -> dict[str, str]:
        frame = scan(lake, lake.table_uri("gold", "twitter_tweets_by_sentiment")).collect()
        return {label: str(n) for label, n in frame.select("sentiment_label", "tweet_count").iter_rows()}

    # The page is open before anything lands (one dbt build keeps this test short; the test above
    # covers a second gold version reaching an open page).
    browser.get(dashboard.url)
    waiting = browser.wait_for(READ_NUMBERS, lambda v: v["loaded"] >= 1)
    assert waiting["total_value"] == "0" and "waiting" in waiting["status"]

    land("search_page_1.json", 0)
    land("stream.ndjson", 1)
    land("search_page_2.json", 5)
    process()
    gold = gold_counts()
    total = str(sum(int(n) for n in gold.values()))
    assert int(total) > 0
    # Both gold tables as the run left them: a refresh of the page can fall between the two
    # tables' commits (the totals already new, the hourly table not yet: seen in CI as 1/0).
    shown = browser.wait_for(READ_NUMBERS, lambda v: v["total_value"] == total
                             and v["version"] == shown_version(lake))
    assert {"Negative": shown["negative"], "Neutral": shown["neutral"], "Positive": shown["positive"]} == gold
    assert shown["points"] >= 3


# -- Telegram activity, Action & Adventure, the language filter ------------------------------------

READ_PANELS = """
const bars = id => [...document.querySelectorAll("#" + id + " rect")]
  .map(r => [r.dataset.label, r.dataset.value]);
return {loaded: Number(document.body.dataset.loaded), lang: document.body.dataset.lang,
        version: document.body.dataset.version,
        tg_total: document.getElementById("tg-total").dataset.value, tg_days: bars("tg-days"),
        tg_hours: bars("tg-hours"), aa_titles: document.getElementById("aa-titles").dataset.value,
        aa_bars: bars("aa-chart"),
        aa_rows: [...document.querySelectorAll("#aa-table tbody tr")].map(
          tr => [...tr.children].map(td => td.textContent)),
        languages: [...document.querySelectorAll("#lang option")].map(o => o.value),
        total: document.getElementById("total").dataset.value,
        positive: (document.getElementById("count-Positive") || {dataset: {}}).dataset.value,
        status: document.getElementById("status").textContent};
"""
SELECT_LANGUAGE = """
const select = document.getElementById("lang");
select.value = arguments[0];
select.dispatchEvent(new Event("change"));
"""


def write_telegram_and_movies_gold(lake: Lake) -> None:
    overwrite_table(lake, lake.table_uri("gold", "telegram_messages_per_day"), pl.DataFrame(
        {"chat_id": [-1, -2, -1], "date": [date(2026, 11, 20), date(2026, 11, 20), date(2026, 11, 22)],
         "chat_title": ["Club", "News", "Club"], "message_count": [5, 2, 9], "active_users": [3, 1, 4]}))
    overwrite_table(lake, lake.table_uri("gold", "telegram_messages_per_hour_weekday_week"), pl.DataFrame(
        {"chat_id": [-1, -1, -2], "iso_year": [2026] * 3, "iso_week": [47, 47, 47], "iso_weekday": [5, 7, 5],
         "hour": [9, 9, 21], "message_count": [4, 10, 2]}, schema_overrides={"iso_year": pl.Int32,
                                                                            "iso_week": pl.Int32,
                                                                            "iso_weekday": pl.Int32,
                                                                            "hour": pl.Int32}))
    overwrite_table(lake, lake.table_uri("gold", "action_adventure_overview"), pl.DataFrame(
        {"year": [1999, 1977], "title_count": [3, 1], "action_count": [2, 1], "adventure_count": [2, 1],
         "action_and_adventure_count": [1, 1], "avg_imdb_rating": [8.65, 8.6], "imdb_votes": [10, 20],
         "avg_movielens_rating": [4.1, 4.2], "movielens_ratings": [5, 6], "avg_tmdb_rating": [8.2, None],
         "titles_with_financials": [1, 1], "total_budget": [63, 11], "total_revenue": [463, 775],
         "roi": [6.35, 69.49]}, schema_overrides={"year": pl.Int32}))


def write_scored_tweets(lake: Lake) -> None:
    rows = [("1", "en", "Positive", "2026-11-23 09:10"), ("2", "en", "Negative", "2026-11-23 09:20"),
            ("3", "pt", "Positive", "2026-11-23 09:30"), ("4", "pt", "Positive", "2026-11-23 11:05"),
            ("5", "pt", "Neutral", "2026-11-22 23:59")]
    created = [datetime.fromisoformat(t).replace(tzinfo=UTC) for *_, t in rows]
    frame = pl.DataFrame({"id": [r[0] for r in rows], "lang": [r[1] for r in rows],
                          "sentiment_label": [r[2] for r in rows], "created_at": created,
                          "date": [c.date() for c in created]},
                         schema_overrides={"created_at": pl.Datetime("us", "UTC")})
    replace_partitions(lake, lake.table_uri("silver", "twitter_sentiment"), frame, "date",
                       frame["date"].unique().to_list())


def test_summary_holds_telegram_activity_and_the_action_adventure_overview(lake: Lake) -> None:
    empty = read_summary(lake)
    assert empty["telegram"]["ready"] is False and empty["action_adventure"]["ready"] is False
    write_telegram_and_movies_gold(lake)
    summary = read_summary(lake)
    telegram = summary["telegram"]
    assert telegram["days"] == ["2026-11-20", "2026-11-21", "2026-11-22"]  # the quiet day at 0
    assert telegram["per_day"] == [7, 0, 9] and telegram["total"] == 16
    assert telegram["per_hour"][9] == 14 and telegram["per_hour"][21] == 2 and sum(telegram["per_hour"]) == 16
    movies = summary["action_adventure"]
    assert [r["year"] for r in movies["rows"]] == [1977, 1999] and movies["titles"] == 4
    assert movies["rows"][1]["roi"] == 6.35 and movies["rows"][0]["avg_tmdb_rating"] is None


def test_language_filter_counts_one_language_from_silver(lake: Lake) -> None:
    write_gold(lake, FIRST, FIRST_HOURLY)
    assert read_summary(lake)["languages"] == []
    write_scored_tweets(lake)
    pt = read_summary(lake, "pt")
    assert pt["languages"] == ["en", "pt"] and pt["lang"] == "pt"
    assert pt["total"] == 3 and pt["by_sentiment"] == {"Negative": 0, "Neutral": 1, "Positive": 2}
    assert pt["hours"][0] == "2026-11-22T23:00:00Z" and pt["hours"][-1] == "2026-11-23T11:00:00Z"
    assert pt["series"]["Positive"][pt["hours"].index("2026-11-23T09:00:00Z")] == 1
    scored = DeltaTable(lake.table_uri("silver", "twitter_sentiment")).version()
    assert pt["versions"] == {"twitter_sentiment": scored}
    assert read_summary(lake)["total"] == 23  # no language: the gold numbers
    assert read_summary(lake, "fr")["total"] == 0


def test_page_shows_telegram_and_action_adventure_and_filters_tweets_by_language(
        lake: Lake, dashboard: DashboardServer, browser: Browser, tmp_path: Path) -> None:
    write_gold(lake, FIRST, FIRST_HOURLY)
    write_scored_tweets(lake)
    write_telegram_and_movies_gold(lake)
    browser.get(dashboard.url)
    shown = browser.wait_for(READ_PANELS, lambda v: v["loaded"] >= 1)
    assert shown["tg_total"] == "16"
    assert shown["tg_days"] == [["11-20", "7"], ["11-21", "0"], ["11-22", "9"]]
    assert len(shown["tg_hours"]) == 24 and shown["tg_hours"][9] == ["09h", "14"]
    assert shown["aa_titles"] == "4" and shown["aa_bars"] == [["1977", "1"], ["1999", "3"]]
    assert shown["aa_rows"][0][:2] == ["1999", "3"] and shown["aa_rows"][0][-1] == "6.3"
    assert shown["languages"] == ["", "en", "pt"]
    assert (shown["total"], shown["positive"]) == ("23", "12")
    browser.screenshot(tmp_path / "dashboard_panels.png")

    browser.execute(SELECT_LANGUAGE, "pt")
    pt = browser.wait_for(READ_PANELS, lambda v: v["lang"] == "pt")
    assert (pt["total"], pt["positive"]) == ("3", "2")
    scored = DeltaTable(lake.table_uri("silver", "twitter_sentiment")).version()
    assert f"silver version {scored} (pt)" in pt["status"]
    assert pt["tg_total"] == "16"  # the other panels do not depend on the filter
    browser.execute(SELECT_LANGUAGE, "")
    back = browser.wait_for(READ_PANELS, lambda v: v["lang"] == "" and v["total"] == "23")
    assert back["version"] == shown_version(lake)
