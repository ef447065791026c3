"""``lakehouse docs``: dbt docs generated from dbt_project and served, read in headless Chromium."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest
import requests

from lakehouse.commands.docs import DBT_PROJECT_DIR, generate_docs
from lakehouse.lake.delta import overwrite_table
from lakehouse.lake.location import Lake
from lakehouse_tests.ui.browser import Browser

MODELS = DBT_PROJECT_DIR / "models"
GOLD_MODELS = sorted(p.stem for p in MODELS.glob("*/*.sql"))

# Walks the Projects tree along a folder path (each name looked up inside the previous folder, so
# the Sources folders of the same names are not taken) and clicks the last folder open.
EXPAND_PROJECT_FOLDER = """
const menu = document.querySelector("div.menu[ng-show=\\"nav_selected == 'project'\\"]");
let root = menu, folder = null;
for (const name of arguments[0]) {
  folder = [...root.querySelectorAll("a.menu-tree")].find(a => a.textContent.trim() === name);
  if (!folder) return false;
  root = folder.closest("li");
}
folder.click();
return true;
"""
# The names the Projects tree shows on screen (hidden items do not count).
VISIBLE_PROJECT_ITEMS = """
const menu = document.querySelector("div.menu[ng-show=\\"nav_selected == 'project'\\"]");
return [...menu.querySelectorAll("a")].filter(a => a.offsetParent !== null && a.getClientRects().length)
  .map(a => a.textContent.replace(/\\s+/g, ""));
"""


def silver_source_tables() -> list[str]:
    """The Delta sources (a ``delta_table_path``): the delta plugin loads each when compiling."""
    manifest = json.loads((DBT_PROJECT_DIR / "target" / "manifest.json").read_text())
    return sorted({source["name"] for source in manifest["sources"].values()
                   if (source.get("meta") or {}).get("delta_table_path")})


@pytest.fixture
def docs_url(lake: Lake, tmp_path: Path) -> Iterator[str]:
    """`lakehouse docs --port 0` on a lake with no silver table, gold DuckDB with one built model."""
    with duckdb.connect(os.environ["LAKEHOUSE_DUCKDB_PATH"]) as con:
        con.execute("create table main.telegram_messages_per_day (chat_id bigint, date date, "
                    "chat_title varchar, message_count bigint, active_users bigint)")
    script = Path(sys.executable).parent / "lakehouse"
    proc = subprocess.Popen([str(script), "docs", "--port", "0", "--target-path", str(tmp_path / "docs")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        assert lines[0].startswith("docs generated at "), lines
        assert "not compiled" in lines[0] and "catalog: built models" in lines[0]
        assert lines[1].startswith("docs on http://127.0.0.1:"), lines
        yield lines[1].split()[2]
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0


def test_docs_list_every_gold_model_without_silver_tables(browser: Browser, docs_url: str,
                                                          tmp_path: Path) -> None:
    assert {"telegram_messages_per_day", "twitter_tweets_by_sentiment", "dim_title"} <= set(GOLD_MODELS)
    browser.get(docs_url)
    browser.wait_for("return document.querySelectorAll('a.menu-tree').length")
    # The landing page is the project's overview: layers, domains, how to read the tables.
    overview = browser.wait_for("return document.body.innerText",
                                lambda t: "the analysts' catalogue" in t)
    assert "Layers" in overview and "quarantine" in overview and "Action & Adventure" in overview
    assert "catalog.read(\"silver.twitter_tweets\")" in overview
    browser.screenshot(tmp_path / "docs_overview.png")
    # Nothing of this machine's folders is published (the lake is $LAKEHOUSE_ROOT).
    page = requests.get(docs_url, timeout=10).text
    assert str(tmp_path) not in page and "$LAKEHOUSE_ROOT/silver/telegram_messages" in page
    assert not set(GOLD_MODELS) & set(browser.execute(VISIBLE_PROJECT_ITEMS))  # folders start closed
    for path in [["lakehouse"], ["lakehouse", "models"], *(["lakehouse", "models", domain]
                                                          for domain in ["telegram", "twitter", "movies"])]:
        assert browser.execute(EXPAND_PROJECT_FOLDER, path), path
    listed = browser.wait_for(VISIBLE_PROJECT_ITEMS, lambda items: set(GOLD_MODELS) <= set(items))
    assert set(GOLD_MODELS) <= set(listed)
    browser.screenshot(tmp_path / "docs_tree.png")

    # A model page carries its description, its columns, and the type the built table has.
    browser.execute("window.location.hash = '#!/model/model.lakehouse.telegram_messages_per_day'")
    text = browser.wait_for("return document.body.innerText",
                            lambda t: "Messages per chat per UTC day" in t and "message_count" in t)
    assert "active_users" in text and "BIGINT" in text
    browser.screenshot(tmp_path / "docs.png")

    # A source page: every column of a silver table is described; exposures name their readers.
    browser.execute("window.location.hash = '#!/source/source.lakehouse.telegram.telegram_messages'")
    text = browser.wait_for("return document.body.innerText",
                            lambda t: "Message id, unique within its chat." in t)
    assert "latest edit winning" in text and "Exposures" in text
    browser.execute("window.location.hash = '#!/exposure/exposure.lakehouse.live_dashboard'")
    text = browser.wait_for("return document.body.innerText", lambda t: "lakehouse dashboard" in t)
    assert "twitter_tweets_per_hour_by_sentiment" in text


def test_docs_compile_the_models_when_the_silver_tables_exist(lake: Lake, tmp_path: Path) -> None:
    # Compiling only loads each source, so a one-column table per source is enough.
    for table in silver_source_tables():
        overwrite_table(lake, lake.table_uri("silver", table), pl.DataFrame({"id": [1]}))
    build = generate_docs(lake, tmp_path / "docs")
    assert (build.compiled, build.catalog, build.missing_sources) == (True, "full", [])
    html = build.page.read_text()
    assert "telegram_messages_per_day" in html
    manifest = json.loads((tmp_path / "docs" / "manifest.json").read_text())
    compiled = manifest["nodes"]["model.lakehouse.twitter_tweets_by_sentiment"]["compiled_code"]
    assert "twitter_sentiment" in compiled and "{{" not in compiled
