"""The analysts' API (`lakehouse.catalog`, `lakehouse tables`) and self-describing Delta tables."""

import subprocess
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable, write_deltalake

from lakehouse import catalog
from lakehouse.lake import table_docs
from lakehouse.lake.delta import append_replacing_sources, overwrite_table, replace_partitions
from lakehouse.lake.location import Lake

SENTIMENT_V0 = pl.DataFrame({"sentiment_label": ["Negative", "Neutral", "Positive"],
                             "tweet_count": [4, 7, 12]})
SENTIMENT_V1 = pl.DataFrame({"sentiment_label": ["Negative", "Neutral", "Positive"],
                             "tweet_count": [40, 700, 1260]})
# The model's description in dbt_project/models/twitter/_twitter__models.yml, as the manifest has it.
SENTIMENT_DESCRIPTION = table_docs.catalogue()["gold.twitter_tweets_by_sentiment"].description
QUARANTINED = pl.DataFrame({"_source_file": ["raw/telegram/webhook/2026/11/23/a.ndjson"],
                            "_record_index": [3], "reason": ["not a JSON object"], "record": ["[1]"],
                            "_ingested_at": [None]},
                           schema_overrides={"_ingested_at": pl.Datetime("us", "UTC")})


def messages(day: date, n: int) -> pl.DataFrame:
    return pl.DataFrame({"chat_id": [-100] * n, "message_id": list(range(n)), "date": [day] * n,
                         "text": ["hello"] * n})


def test_every_write_mode_leaves_the_table_self_describing(lake: Lake) -> None:
    gold = lake.table_uri("gold", "twitter_tweets_by_sentiment")
    overwrite_table(lake, gold, SENTIMENT_V0)
    quarantine = lake.table_uri("quarantine", "telegram_quarantine")
    append_replacing_sources(lake, quarantine, QUARANTINED, QUARANTINED["_source_file"])
    silver = lake.table_uri("silver", "telegram_messages")
    replace_partitions(lake, silver, messages(date(2026, 11, 23), 3), "date", [date(2026, 11, 23)])

    docs = table_docs.catalogue()
    for name, uri in [("gold.twitter_tweets_by_sentiment", gold),
                      ("quarantine.telegram_quarantine", quarantine),
                      ("silver.telegram_messages", silver)]:
        created = DeltaTable(uri, version=0)  # described in the commit that created it
        assert created.metadata().name == name and len(table_docs.column_comments(created)) > 0
        table = DeltaTable(uri)
        assert [h["operation"] for h in table.history()][-1] == "CREATE TABLE"
        assert "UPDATE TABLE METADATA" not in [h["operation"] for h in table.history()]
        assert table.metadata().name == name
        assert table.metadata().description == docs[name].description != ""
        comments = table_docs.column_comments(table)
        assert set(comments) == set(table.schema().to_arrow().names), name
        assert comments == {c: docs[name].columns[c] for c in comments}
    assert table_docs.column_comments(DeltaTable(gold))["tweet_count"] == (
        docs["gold.twitter_tweets_by_sentiment"].columns["tweet_count"])

    # Once described, a write commits only its data: no docs commit, comments kept.
    for uri, write in [(gold, lambda: overwrite_table(lake, gold, SENTIMENT_V1)),
                       (silver, lambda: replace_partitions(lake, silver, messages(date(2026, 11, 24), 2),
                                                           "date", [date(2026, 11, 24)]))]:
        before = DeltaTable(uri).version()
        write()
        table = DeltaTable(uri)
        assert table.version() == before + 1
        assert table.history(1)[0]["operation"] == "WRITE"
        assert len(table_docs.column_comments(table)) == len(table.schema().fields)


def test_a_table_written_before_it_had_docs_is_described_by_its_next_write(lake: Lake) -> None:
    uri = lake.table_uri("silver", "telegram_messages")
    write_deltalake(uri, messages(date(2026, 11, 23), 3).to_arrow(), partition_by=["date"])
    assert DeltaTable(uri).metadata().name is None
    replace_partitions(lake, uri, messages(date(2026, 11, 24), 2), "date", [date(2026, 11, 24)])
    table = DeltaTable(uri)
    assert table.metadata().name == "silver.telegram_messages"
    assert table.metadata().description.startswith("One row per (chat_id, message_id)")
    assert table_docs.column_comments(table)["message_id"] == "Message id, unique within its chat."
    # after the data: one commit for all the comments (an empty overwrite), the name, the description
    assert [h["operation"] for h in table.history()][:3] == ["UPDATE TABLE METADATA"] * 2 + ["WRITE"]
    assert catalog.read("silver.telegram_messages").height == 5


def test_catalog_lists_reads_time_travels_and_queries(lake: Lake) -> None:
    uri = lake.table_uri("gold", "twitter_tweets_by_sentiment")
    overwrite_table(lake, uri, SENTIMENT_V0)
    first = DeltaTable(uri).version()
    overwrite_table(lake, uri, SENTIMENT_V1)
    replace_partitions(lake, lake.table_uri("silver", "telegram_messages"),
                       messages(date(2026, 11, 23), 3), "date", [date(2026, 11, 23)])

    listed = catalog.tables()
    assert listed.columns == ["layer", "table", "rows", "version", "last_update", "description"]
    assert listed.select("layer", "table", "rows").rows() == [
        ("gold", "twitter_tweets_by_sentiment", 3), ("silver", "telegram_messages", 3)]
    gold = listed.row(0, named=True)
    assert gold["version"] == DeltaTable(uri).version() and gold["last_update"] is not None
    assert gold["description"] == SENTIMENT_DESCRIPTION
    assert catalog.tables("silver")["table"].to_list() == ["telegram_messages"]

    assert catalog.read("gold.twitter_tweets_by_sentiment")["tweet_count"].sum() == 2000
    assert catalog.read("gold.twitter_tweets_by_sentiment", version=first)["tweet_count"].sum() == 23
    lazy = catalog.read("silver.telegram_messages", lazy=True)
    assert isinstance(lazy, pl.LazyFrame)
    assert lazy.filter(pl.col("date") == date(2026, 11, 23)).select(pl.len()).collect().item() == 3
    assert catalog.history("gold.twitter_tweets_by_sentiment")["version"][0] == gold["version"]
    assert catalog.columns("gold.twitter_tweets_by_sentiment").row(1) == (
        "tweet_count", "int64",
        table_docs.catalogue()["gold.twitter_tweets_by_sentiment"].columns["tweet_count"])

    con = catalog.duckdb()
    assert con.execute("select sum(tweet_count) from gold.twitter_tweets_by_sentiment").fetchone() == (2000,)
    assert con.execute("select count(*) from silver.telegram_messages").fetchone() == (3,)

    with pytest.raises(KeyError, match="did you mean gold.twitter_tweets_by_sentiment"):
        catalog.read("gold.twitter_tweets_by_sentimen")
    with pytest.raises(ValueError, match="<layer>.<table>"):
        catalog.read("twitter_tweets_by_sentiment")


def test_catalog_finds_the_project_lake_from_any_folder(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAKEHOUSE_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    assert catalog.lake().root == str(Path(catalog.__file__).resolve().parents[1] / "data" / "lake")


def test_catalog_reads_an_s3_lake_with_credentials_from_the_environment(s3_lake: Lake) -> None:
    uri = s3_lake.table_uri("gold", "twitter_tweets_by_sentiment")
    overwrite_table(s3_lake, uri, SENTIMENT_V0)
    first = DeltaTable(uri, storage_options=s3_lake.storage_options).version()
    overwrite_table(s3_lake, uri, SENTIMENT_V1)
    assert catalog.lake().root.startswith("s3://")
    assert catalog.tables().select("table", "rows", "version").row(0) == (
        "twitter_tweets_by_sentiment", 3, first + 1)
    assert catalog.read("gold.twitter_tweets_by_sentiment", version=first)["tweet_count"].sum() == 23
    query = "select sum(tweet_count) from gold.twitter_tweets_by_sentiment"
    assert catalog.duckdb().execute(query).fetchone() == (2000,)
    table = DeltaTable(uri, storage_options=s3_lake.storage_options)
    assert table.metadata().name == "gold.twitter_tweets_by_sentiment"


def test_tables_command_lists_every_table_with_its_description(lake: Lake) -> None:
    overwrite_table(lake, lake.table_uri("gold", "twitter_tweets_by_sentiment"), SENTIMENT_V0)
    append_replacing_sources(lake, lake.table_uri("quarantine", "telegram_quarantine"), QUARANTINED,
                             QUARANTINED["_source_file"])
    script = Path(sys.executable).parent / "lakehouse"
    out = subprocess.run([str(script), "tables"], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[0].split(" | ")[0].strip() == "layer" and "description" in lines[0]
    gold = next(line for line in lines if "twitter_tweets_by_sentiment" in line)
    assert "| 3 |" in gold.replace("  ", " ") or " 3 | " in gold
    assert SENTIMENT_DESCRIPTION[:60] in gold
    assert "Raw Telegram records that could not be parsed" in out
    csv = subprocess.run([str(script), "tables", "--format", "csv", "--layer", "quarantine"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert csv[0] == "layer,table,rows,version,last_update,description"
    assert csv[1].startswith("quarantine,telegram_quarantine,1,")
    empty = subprocess.run([str(script), "tables", "--layer", "bronze"], capture_output=True, text=True)
    assert empty.returncode == 1 and "no Delta tables under" in empty.stderr


def test_dagster_shows_every_bronze_and_silver_column_with_the_catalogue_description() -> None:
    import dagster as dg

    from lakehouse.definitions import defs

    specs = {spec.key: spec for spec in defs().resolve_all_asset_specs()}
    docs = table_docs.catalogue()
    for layer, table in [("silver", "twitter_tweets"), ("bronze", "twitter_records"),
                         ("silver", "telegram_messages"), ("quarantine", "telegram_quarantine"),
                         ("silver", "imdb_titles")]:
        columns = specs[dg.AssetKey([layer, table])].metadata["dagster/column_schema"].columns
        assert {c.name: c.description for c in columns} == docs[f"{layer}.{table}"].columns


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_snapshot_table_describes_every_column_and_keeps_its_source_version(
        where: str, request: pytest.FixtureRequest) -> None:
    """Movie snapshots (IMDB, MovieLens, CSV drops) are rebuilt whole by a path of their own; on
    S3 that path streams through Polars' sink, which carries no column comments."""
    from lakehouse.lake.snapshots import built_from, write_snapshot_table

    target: Lake = request.getfixturevalue("lake" if where == "local" else "s3_lake")
    uri = target.table_uri("silver", "imdb_ratings")
    ratings = pl.LazyFrame({"tconst": ["tt0000001", "tt0000002"], "average_rating": [5.7, 5.6],
                            "num_votes": [2071, 281]})
    doc = table_docs.catalogue()["silver.imdb_ratings"]
    for tag in ("raw/imdb/title_ratings/a.tsv.gz@1", "raw/imdb/title_ratings/b.tsv.gz@2"):
        write_snapshot_table(target, uri, ratings, tag)
        table = DeltaTable(uri, storage_options=target.storage_options or None)
        assert built_from(target, uri) == tag
        assert table.metadata().name == "silver.imdb_ratings"
        assert table.metadata().description == doc.description
        assert table_docs.column_comments(table) == doc.columns
        assert catalog.read("silver.imdb_ratings").height == 2
