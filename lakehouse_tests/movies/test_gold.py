"""Gold end to end: the sample sources through silver and dbt to gold Delta tables, checked
against values computed here straight from the sample catalogue, without our transforms."""

import csv
import io
import sys
from collections import defaultdict
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from dagster_dbt import DbtCliResource

from lakehouse.defs.gold.assets import DBT_PROJECT_DIR, dbt_project, gold_dbt_models, gold_selection
from lakehouse.defs.movies.demo import materialize_sample, sample_resources, summary
from lakehouse.lake.delta import scan
from lakehouse.lake.location import Lake
from lakehouse.sources.movies_sample import TITLES, movielens_members

GOLD = ["dim_title", "dim_genre", "bridge_title_genre", "dim_person", "fct_rating",
        "action_adventure_overview", "top_titles_weighted", "genre_trends_by_decade",
        "rating_agreement_imdb_vs_movielens", "roi_by_genre", "top_tags"]


@pytest.fixture(scope="module")
def gold_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """The sample pipeline and the movie gold models built once for this module."""
    tmp = tmp_path_factory.mktemp("movies_gold")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAKEHOUSE_ROOT", str(tmp / "lake"))
        mp.setenv("LAKEHOUSE_DUCKDB_PATH", str(tmp / "gold.duckdb"))
        instance = dg.DagsterInstance.ephemeral()
        materialize_sample(instance, drop_dir=tmp / "drop")
        dbt = DbtCliResource(project_dir=dbt_project, profiles_dir=str(DBT_PROJECT_DIR),
                             dbt_executable=str(Path(sys.executable).parent / "dbt"))
        resources = {"dbt": dbt, **sample_resources(tmp / "drop")}
        result = dg.materialize([gold_dbt_models], instance=instance, resources=resources,
                                selection=gold_selection("movies"))
        assert result.success
        yield Lake.from_env()


def gold(lake: Lake, model: str) -> pl.DataFrame:
    return scan(lake, lake.table_uri("gold", model)).collect()


def _csv(member: str) -> list[dict[str, str]]:
    data = movielens_members()[f"ml-latest-small/{member}"].decode()
    return list(csv.DictReader(io.StringIO(data)))


def _movielens_means() -> dict[int, tuple[float, int]]:
    by_movie: dict[int, list[float]] = defaultdict(list)
    for row in _csv("ratings.csv"):
        if 0.5 <= float(row["rating"]) <= 5.0:
            by_movie[int(row["movieId"])].append(float(row["rating"]))
    return {m: (sum(r) / len(r), len(r)) for m, r in by_movie.items()}


def test_every_gold_model_lands_as_delta(gold_lake: Lake) -> None:
    for model in GOLD:
        assert gold(gold_lake, model).height > 0, model
    assert "action_adventure_overview" in summary(gold_lake)


def test_dim_title_joins_one_title_across_sources(gold_lake: Lake) -> None:
    titles = gold(gold_lake, "dim_title")
    assert titles["title_id"].is_unique().all()
    both = titles.filter(pl.col("in_imdb") & pl.col("in_movielens") & pl.col("in_tmdb"))
    expected = {t.tconst for t in TITLES if t.ml_id and t.tmdb_id and t.tconst != "tt0118694"}
    assert set(both["title_id"].to_list()) == expected
    matrix = titles.filter(pl.col("title_id") == "tt0133093").row(0, named=True)
    assert (matrix["movielens_movie_id"], matrix["tmdb_id"], matrix["budget"]) == (2571, 603,
                                                                                   63_000_000)


def test_action_adventure_overview_matches_independent_computation(gold_lake: Lake) -> None:
    means = _movielens_means()
    rows: dict[int, dict] = {}
    for t in TITLES:
        genres = set(t.genres) | set((t.ml_genres or "").split("|"))
        if t.title_type != "movie" or not genres & {"Action", "Adventure"}:
            continue
        row = rows.setdefault(t.start_year, {"year": t.start_year, "title_count": 0,
                                             "action_count": 0, "adventure_count": 0,
                                             "imdb_votes": 0, "ml": [], "budget": 0,
                                             "revenue": 0})
        row["title_count"] += 1
        row["action_count"] += "Action" in genres
        row["adventure_count"] += "Adventure" in genres
        row["imdb_votes"] += t.imdb_votes
        if t.ml_id in means:
            row["ml"].append(means[t.ml_id][0])
        if t.budget and t.revenue:
            row["budget"] += t.budget
            row["revenue"] += t.revenue
    got = {r["year"]: r for r in gold(gold_lake, "action_adventure_overview").to_dicts()}
    assert set(got) == set(rows)
    for year, want in rows.items():
        have = got[year]
        for column in ("title_count", "action_count", "adventure_count", "imdb_votes"):
            assert have[column] == want[column], (year, column)
        assert have["total_budget"] == want["budget"] and have["total_revenue"] == want["revenue"]
        assert have["avg_movielens_rating"] == pytest.approx(sum(want["ml"]) / len(want["ml"]),
                                                            abs=0.006)


def test_top_titles_weighted_matches_the_imdb_formula(gold_lake: Lake) -> None:
    m = 25_000
    listed = [t for t in TITLES if t.title_type == "movie" and t.imdb_votes >= m]
    c = sum(t.imdb_rating for t in listed) / len(listed)
    score = {t.tconst: t.imdb_votes / (t.imdb_votes + m) * t.imdb_rating
             + m / (t.imdb_votes + m) * c for t in listed}
    top = gold(gold_lake, "top_titles_weighted").sort("rank")
    assert top["title_id"].to_list() == sorted(score, key=lambda k: (-round(score[k], 4),
                                                                     -by_votes(k), k))
    for row in top.iter_rows(named=True):
        assert row["weighted_rating"] == pytest.approx(score[row["title_id"]], abs=1e-4)
    assert "tt0118694" not in top["title_id"].to_list()  # 4,200 votes: below the minimum


def by_votes(tconst: str) -> int:
    return next(t.imdb_votes for t in TITLES if t.tconst == tconst)


def test_rating_agreement_doubles_movielens_stars(gold_lake: Lake) -> None:
    means = _movielens_means()
    got = gold(gold_lake, "rating_agreement_imdb_vs_movielens")
    expected = {t.tconst: (t.imdb_rating, means[t.ml_id][0] * 2) for t in TITLES
                if t.ml_id in means}
    assert set(got["title_id"].to_list()) == set(expected)
    for row in got.iter_rows(named=True):
        imdb, ml10 = expected[row["title_id"]]
        assert row["difference"] == pytest.approx(imdb - ml10, abs=1e-3)
        assert row["agreement"] == ("agree" if abs(imdb - ml10) <= 1 else
                                    "imdb higher" if imdb > ml10 else "movielens higher")


def test_top_tags_count_normalised_tags(gold_lake: Lake) -> None:
    applied: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for row in _csv("tags.csv"):
        tag = " ".join(row["tag"].split()).lower()
        applied[tag].add((row["userId"], row["movieId"]))
    got = {r["tag"]: r for r in gold(gold_lake, "top_tags").to_dicts()}
    assert set(got) == set(applied)
    for tag, pairs in applied.items():
        assert got[tag]["applications"] == len(pairs)
        assert got[tag]["user_count"] == len({u for u, _ in pairs})


def test_roi_by_genre_uses_known_budgets_only(gold_lake: Lake) -> None:
    action = gold(gold_lake, "roi_by_genre").filter(pl.col("genre_id") == "action").row(0, named=True)
    films = [t for t in TITLES if t.title_type == "movie" and t.budget and t.revenue
             and "Action" in set(t.genres) | set((t.ml_genres or "").split("|"))]
    assert action["title_count"] == len(films)
    budget, revenue = sum(t.budget for t in films), sum(t.revenue for t in films)
    assert action["total_roi"] == pytest.approx((revenue - budget) / budget, abs=1e-4)


def test_docs_catalogue_lists_every_gold_model() -> None:
    import json

    manifest = json.loads((Path(__file__).parents[2] / "dbt_project" / "target" /
                           "manifest.json").read_text())
    models = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    for model in GOLD:
        assert model in models and models[model]["description"]
        undocumented = [c for c, v in models[model]["columns"].items() if not v["description"]]
        assert not undocumented, (model, undocumented)
