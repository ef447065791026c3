"""The live dashboard: gold Delta tables -> /api/summary -> the page in headless Chromium."""

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
import requests

from lakehouse.dashboard.queries import read_summary
from lakehouse.dashboard.server import DashboardServer
from lakehouse.lake.delta import overwrite_table
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
    overwrite_table(lake, lake.table_uri("gold", "tweets_by_sentiment"), pl.DataFrame(
        {"sentiment_label": list(counts), "tweet_count": list(counts.values())},
        schema={"sentiment_label": pl.String, "tweet_count": pl.Int64}))
    overwrite_table(lake, lake.table_uri("gold", "tweets_per_hour_by_sentiment"), pl.DataFrame(
        {"hour": [datetime.fromisoformat(h) for h, _, _ in hourly],
         "sentiment_label": [label for _, label, _ in hourly], "tweet_count": [n for _, _, n in hourly]},
        schema={"hour": pl.Datetime("us"), "sentiment_label": pl.String, "tweet_count": pl.Int64}))


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
    assert summary["versions"] == {"tweets_by_sentiment": 0, "tweets_per_hour_by_sentiment": 0}


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
    assert first["version"] == "0/0"
    assert "gold version 0" in first["status"]

    # A new batch lands: the open page picks it up by itself, no reload.
    write_gold(lake, SECOND, SECOND_HOURLY)
    second = browser.wait_for(READ_NUMBERS, lambda v: v["version"] == "1/1" and v["total_value"] == "2000")
    assert second["total"] == "2,000"
    assert (second["negative"], second["neutral"], second["positive"]) == ("40", "700", "1260")
    assert second["positive_text"] == "1,260"
    assert second["points"] == 3 * 4
    browser.screenshot(tmp_path / "dashboard.png")


def test_page_waits_for_gold_then_shows_it(lake: Lake, dashboard: DashboardServer, browser: Browser) -> None:
    browser.get(dashboard.url)
    empty = browser.wait_for(READ_NUMBERS, lambda v: v["loaded"] >= 1)
    assert empty["total"] == "0" and "waiting for gold/tweets_by_sentiment" in empty["status"]
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
        [gold_dbt_models], dbt_select="tweets_by_sentiment tweets_per_hour_by_sentiment")
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
        frame = scan(lake, lake.table_uri("gold", "tweets_by_sentiment")).collect()
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
    shown = browser.wait_for(READ_NUMBERS, lambda v: v["total_value"] == total)
    assert {"Negative": shown["negative"], "Neutral": shown["neutral"], "Positive": shown["positive"]} == gold
    assert shown["version"] == "0/0" and shown["points"] >= 3
