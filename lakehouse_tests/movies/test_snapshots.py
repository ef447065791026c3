"""IMDB, MovieLens and CSV drops end to end on the sample backends: landing, silver, snapshots."""

import time

import dagster as dg
import polars as pl
from deltalake import DeltaTable

from lakehouse.defs.movies.assets import (
    csv_drop_partitions,
    csv_drop_raw,
    csv_drop_silver,
    imdb_raw,
    imdb_silver_assets,
    movielens_raw,
    movielens_silver,
)
from lakehouse.lake.delta import scan
from lakehouse.lake.location import Lake
from lakehouse.lake.maintenance import maintain_table
from lakehouse.lake.resource import LakeResource
from lakehouse.lake.snapshots import SOURCE_PROPERTY, read_state
from lakehouse.sources.csv_drop import CsvDropResource, write_sample_drop
from lakehouse.sources.imdb import ImdbResource
from lakehouse.sources.movielens import MovieLensResource

SNAPSHOT_ASSETS = [imdb_raw, *imdb_silver_assets, movielens_raw, movielens_silver]
IMDB_TABLES = ["imdb_titles", "imdb_ratings", "imdb_akas", "imdb_crew", "imdb_principals",
               "imdb_names", "imdb_episodes"]
ML_TABLES = ["movielens_movies", "movielens_ratings", "movielens_tags", "movielens_tag_counts",
             "movielens_links"]


def resources(version: int = 1) -> dict:
    return {"lake": LakeResource(), "imdb": ImdbResource(use_sample=True, sample_version=version),
            "movielens": MovieLensResource(use_sample=True, sample_version=version)}


def versions(lake: Lake) -> dict[str, int]:
    return {t: DeltaTable(lake.table_uri("silver", t)).version() for t in IMDB_TABLES + ML_TABLES}


def raw_files(lake: Lake) -> list[str]:
    return lake.list_keys("raw/imdb") + lake.list_keys("raw/movielens")


def read(lake: Lake, table: str, layer: str = "silver") -> pl.DataFrame:
    return scan(lake, lake.table_uri(layer, table)).collect()


def test_unchanged_source_lands_nothing_and_commits_nothing(lake: Lake) -> None:
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize(SNAPSHOT_ASSETS, instance=instance, resources=resources()).success
    files, before = raw_files(lake), versions(lake)
    assert len(files) == 8  # seven IMDB datasets and one zip
    assert all(v == 0 for v in before.values())
    assert dg.materialize(SNAPSHOT_ASSETS, instance=instance, resources=resources()).success
    assert raw_files(lake) == files
    assert versions(lake) == before


def test_unchanged_source_commits_nothing_after_the_upkeep_trimmed_the_log(lake: Lake) -> None:
    # The source version a silver table was built from is its data commit's metadata; the
    # upkeep trims the log that holds that commit (a day later in production, a second here),
    # and an unchanged source must still be recognised, not rebuilt every day after.
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize(SNAPSHOT_ASSETS, instance=instance, resources=resources()).success
    time.sleep(1.5)
    for table in IMDB_TABLES + ML_TABLES:
        maintain_table(lake, lake.table_uri("silver", table), retention_hours=0,
                       log_retention_hours=1 / 3600)
        # The data commit, which named the source version, is gone from the log.
        kept = DeltaTable(lake.table_uri("silver", table)).history()
        assert not any(SOURCE_PROPERTY in commit for commit in kept), (table, kept)
    after_upkeep = versions(lake)

    assert dg.materialize(SNAPSHOT_ASSETS, instance=instance, resources=resources()).success
    assert versions(lake) == after_upkeep
    assert read(lake, "imdb_titles").height == 30


def test_changed_source_replaces_silver_in_one_commit_and_keeps_the_old(lake: Lake) -> None:
    instance = dg.DagsterInstance.ephemeral()
    dg.materialize(SNAPSHOT_ASSETS, instance=instance, resources=resources(1))
    old = read(lake, "imdb_ratings")
    first_key = read_state(lake, "raw/imdb/title_ratings").key
    assert dg.materialize(SNAPSHOT_ASSETS, instance=instance, resources=resources(2)).success
    after = versions(lake)
    # Version 2 changes the ratings and the MovieLens zip; the other IMDB files are the same.
    assert after["imdb_ratings"] == 1 and after["imdb_titles"] == 0
    assert all(after[t] == 1 for t in ML_TABLES)
    new_key = read_state(lake, "raw/imdb/title_ratings").key
    assert new_key != first_key and lake.exists(first_key) and lake.exists(new_key)
    new = read(lake, "imdb_ratings")
    assert new.height == old.height
    assert (new.sort("tconst")["num_votes"] - old.sort("tconst")["num_votes"]).to_list() == \
        [1] * new.height
    time_travel = pl.read_delta(lake.table_uri("silver", "imdb_ratings"), version=0)
    assert time_travel.sort("tconst").equals(old.sort("tconst"))
    quarantine = read(lake, "movies_quarantine", "quarantine")
    # One bad ratings row per IMDB version and per MovieLens version, replaced per source file.
    assert sorted(quarantine["table"].to_list()) == ["imdb_ratings", "imdb_ratings",
                                                     "movielens_ratings", "movielens_ratings"]


def test_silver_rows_follow_the_raw_formats(lake: Lake) -> None:
    dg.materialize(SNAPSHOT_ASSETS, instance=dg.DagsterInstance.ephemeral(), resources=resources())
    titles = read(lake, "imdb_titles")
    assert titles["tconst"].is_unique().all() and titles.height == 30  # the duplicate line dropped
    quoted = titles.filter(pl.col("tconst") == "tt0118694").row(0, named=True)
    assert quoted["primary_title"] == 'The "Quoted" Heist'
    short = titles.filter(pl.col("tconst") == "tt0000001").row(0, named=True)
    assert short["runtime_minutes"] is None and short["genres"] == [] and short["decade"] == 1890
    movies = read(lake, "movielens_movies")
    matrix = movies.filter(pl.col("movie_id") == 2571).row(0, named=True)
    assert (matrix["title"], matrix["year"]) == ("The Matrix", 1999)
    assert movies.filter(pl.col("movie_id") == 1500)["genres"].to_list() == [[]]
    links = read(lake, "movielens_links")
    # Every MovieLens link joins an IMDB title; the 8-digit id keeps its digits.
    assert links.join(titles, left_on="imdb_id", right_on="tconst", how="anti").height == 0
    assert "tt10872600" in links["imdb_id"].to_list()
    assert links.filter(pl.col("movie_id") == 924)["tmdb_id"].to_list() == [None]
    ratings = read(lake, "movielens_ratings")
    assert ratings.schema["rated_at"] == pl.Datetime("us", "UTC")
    assert ratings.select(pl.struct("user_id", "movie_id").is_unique().all()).item()
    assert ratings["rating"].is_between(0.5, 5.0).all()
    tags = read(lake, "movielens_tags")
    assert "great  soundtrack" not in tags["tag"].to_list()
    counts = read(lake, "movielens_tag_counts")
    assert counts["n_applications"].sum() == tags.height


def test_dropped_csv_is_landed_unmodified_and_loaded(lake: Lake, tmp_path) -> None:
    drop = tmp_path / "drop"
    (movies_csv, series_csv) = write_sample_drop(drop)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(csv_drop_partitions.name, ["movies", "series"])
    res = {"lake": LakeResource(), "csv_drop": CsvDropResource(drop_dir=str(drop))}
    for spec in ("movies", "series"):
        assert dg.materialize([csv_drop_raw, csv_drop_silver], instance=instance, resources=res,
                              partition_key=spec).success
    [landed] = lake.list_keys("raw/csv_drop/file/movies")
    assert landed.startswith("raw/csv_drop/file/movies/") and landed.endswith("/movies.csv")
    assert lake.read_bytes(landed) == movies_csv.read_bytes()
    movies = read(lake, "csv_movies")
    assert {"id", "titulo_pincipal", "nota_media", "numero_votos"} <= set(movies.columns)
    assert movies.schema["nota_media"] == pl.Float64
    assert sorted(read(lake, "csv_series")["ano_termino"].to_list()) == [2013, 2019]
    # Same file again: nothing new; a changed file: a new raw version and a new table version.
    dg.materialize([csv_drop_raw, csv_drop_silver], instance=instance, resources=res,
                   partition_key="movies")
    assert DeltaTable(lake.table_uri("silver", "csv_movies")).version() == 0
    movies_csv.write_bytes(movies_csv.read_bytes().replace(b"\n", b"\r\n").replace(b"|", b";"))
    dg.materialize([csv_drop_raw, csv_drop_silver], instance=instance, resources=res,
                   partition_key="movies")
    assert len(lake.list_keys("raw/csv_drop/file/movies")) == 2
    assert DeltaTable(lake.table_uri("silver", "csv_movies")).version() == 1
    assert read(lake, "csv_movies").sort("id").equals(movies.sort("id"))


def test_snapshots_on_s3_land_and_replace_the_same_way(s3_lake: Lake) -> None:
    instance = dg.DagsterInstance.ephemeral()
    assets = [imdb_raw, *imdb_silver_assets]
    selection = [dg.AssetKey(["raw", "imdb", "title_ratings"]),
                 dg.AssetKey(["silver", "imdb_ratings"])]
    for version in (1, 1, 2):
        assert dg.materialize(assets, instance=instance, resources=resources(version),
                              selection=selection).success
    assert len(s3_lake.list_keys("raw/imdb/title_ratings")) == 2
    uri = s3_lake.table_uri("silver", "imdb_ratings")
    assert DeltaTable(uri, storage_options=s3_lake.storage_options).version() == 1
    assert read(s3_lake, "imdb_ratings").height == 27
