"""Synthetic movie sources of the real shape, and the movie pipeline's stages as the assets run them.

Shared by ``bench/scale.py`` (1x, 2x, 4x a base size) and ``bench/full_refresh.py`` (the real
size). ``generate(folder, fraction)`` writes, once, what the real sources publish, scaled by
``fraction`` (1.0 = the real size):

- the seven IMDB datasets as gzip TSV (``\\N`` nulls, no quoting, a stray ``"`` in titles),
  sorted by their key as IMDB sorts them (the id as text: ``tt9916880`` after ``tt10000000``),
  with the real columns and row counts (``IMDB_ROWS``): every id of the other files is a title
  or a person of basics and names, principals and akas several rows per title (ordering 1..k);
- MovieLens ml-32m as its zip (``ml-32m/ratings.csv`` ordered by user then movie, ``movies.csv``
  with quoted titles, ``tags.csv``, ``links.csv``), counts in ``MOVIELENS_ROWS``.

Values are random (numpy, fixed seed) with the real distributions' rough shape: skewed
popularity of people and movies, 1-3 genres, some nulls, lists in the real separators.

``run_stage(stage, lake_root, ...)`` runs one stage in this process with exactly the functions
the Dagster assets call: ``build_imdb_table`` per IMDB dataset, ``build_movielens_tables``, and
the gold models through the dbt CLI (``dbt build``, as ``gold_dbt_models`` runs it) followed by
``land_models_as_delta``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from datetime import date
from pathlib import Path

IMDB_ROWS = {  # rows of the real datasets (IMDB, late 2025), without the header
    "title.basics": 11_000_000, "title.akas": 50_000_000, "title.crew": 11_000_000,
    "title.episode": 9_000_000, "title.principals": 90_000_000, "title.ratings": 1_500_000,
    "name.basics": 14_000_000,
}
MOVIELENS_ROWS = {"ratings.csv": 32_000_204, "tags.csv": 2_000_072, "movies.csv": 87_585,
                  "links.csv": 87_585}
ML_USERS = 200_948
IMDB_STAGES = tuple(f"imdb:{d}" for d in IMDB_ROWS)
STAGES = (*IMDB_STAGES, "movielens", "gold")
RELEASE = "ml-32m"

WORDS = ["the", "of", "a", "love", "night", "man", "day", "last", "story", "dark", "city", "king",
         "house", "world", "life", "war", "girl", "blood", "secret", "game", "home", "time", "dead",
         "black", "lost", "red", "river", "star", "road", "summer", "heart", "return", "dream",
         "fire", "island", "ghost", "journey", "shadow", "moon"]
GENRES = ["Drama", "Comedy", "Documentary", "Action", "Adventure", "Romance", "Thriller", "Crime",
          "Horror", "Family", "Animation", "Sci-Fi", "Fantasy", "Music", "Short", "Biography",
          "History", "Mystery", "War", "Western", "Sport", "Musical", "Reality-TV", "Talk-Show",
          "News", "Game-Show", "Film-Noir", "Adult"]
TYPES = ["tvEpisode", "short", "movie", "video", "tvSeries", "tvMovie", "tvMiniSeries",
         "videoGame", "tvSpecial"]
TYPE_SHARE = [0.78, 0.08, 0.065, 0.03, 0.02, 0.012, 0.006, 0.004, 0.003]
CATEGORIES = ["actor", "actress", "self", "director", "writer", "producer", "composer",
              "cinematographer", "editor", "production_designer", "archive_footage"]
PROFESSIONS = ["actor", "actress", "writer", "director", "producer", "composer", "editor",
               "cinematographer", "soundtrack", "miscellaneous", "camera_department"]
REGIONS = ["US", "GB", "FR", "DE", "BR", "JP", "IN", "ES", "IT", "CA", "XWW", None]
AKA_TYPES = ["imdbDisplay", "original", "alternative", "working", "festival", "dvd", "tv"]
ML_GENRES = ["Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary",
             "Drama", "Fantasy", "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance",
             "Sci-Fi", "Thriller", "War", "Western"]


# -- generation ---------------------------------------------------------------------------------

def _rows(total: int, fraction: float) -> int:
    return max(10, round(total * fraction))


def _ids(prefix: str, n: int):
    """IMDB ids 1..n in IMDB's order: the id as text (7 digits zero-padded, then 8)."""
    import polars as pl

    return (pl.select((pl.lit(prefix) + pl.int_range(1, n + 1).cast(pl.String).str.zfill(7))
                      .alias("id")).to_series().sort())


class _Gzip:
    """A gzip file written by a ``gzip -1`` process: compression runs on the other core."""

    def __init__(self, path: Path, header: list[str]):
        self.path, self.out = path, open(path, "wb")  # noqa: SIM115 (closed by close())
        self.proc = subprocess.Popen(["gzip", "-1", "-c"], stdin=subprocess.PIPE, stdout=self.out)
        assert self.proc.stdin is not None
        self.proc.stdin.write(("\t".join(header) + "\n").encode())

    def write(self, frame) -> None:
        frame.write_csv(self.proc.stdin, include_header=False, separator="\t",
                        quote_style="never", null_value="\\N")

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        if self.proc.wait() != 0:
            raise RuntimeError(f"gzip failed writing {self.path}")
        self.out.close()


def _words(rng, n: int, most: int = 3):
    import polars as pl

    words = pl.Series(WORDS)
    k = rng.integers(1, most + 1, n)
    parts = [words.gather(rng.integers(0, len(WORDS), n)) for _ in range(most)]
    text = parts[0]
    for i in range(1, most):
        text = pl.select(pl.when(pl.lit(k > i)).then(pl.concat_str([pl.lit(text), pl.lit(parts[i])],
                                                                    separator=" "))
                         .otherwise(pl.lit(text))).to_series()
    text = text.str.to_titlecase()
    quoted = pl.Series(rng.random(n) < 0.005)  # a stray quote: data, never quoting
    return pl.select(pl.when(pl.lit(quoted)).then(pl.lit('"') + pl.lit(text))
                     .otherwise(pl.lit(text))).to_series().cast(pl.String)


def _pick_list(rng, choices, n: int, low: int, high: int, null_share: float, sep: str = ","):
    """Comma lists of ``low..high`` items drawn from ``choices`` (a Series), null some of the time."""
    import polars as pl

    k = rng.integers(low, high + 1, n)
    picked = [choices.gather(rng.integers(0, len(choices), n)) for _ in range(high)]
    text = picked[0]
    for i in range(1, high):
        text = pl.select(pl.when(pl.lit(k > i)).then(
            pl.concat_str([pl.lit(text), pl.lit(picked[i])], separator=sep))
            .otherwise(pl.lit(text))).to_series()
    return pl.select(pl.when(pl.lit(rng.random(n) < null_share)).then(None)
                     .otherwise(pl.lit(text))).to_series().cast(pl.String)


def _skewed(rng, n: int, size: int):
    """``n`` indexes into ``size`` items, a few items much more popular than the rest."""
    import numpy as np

    return np.minimum((rng.random(n) ** 2.5 * size).astype(np.int64), size - 1)


def _nullable_ints(rng, values, null_share: float):
    import polars as pl

    return pl.Series(values).cast(pl.String).set(pl.Series(rng.random(len(values)) < null_share),
                                                  None)


def generate_imdb(folder: Path, fraction: float, chunk: int = 1_000_000) -> dict[str, Path]:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(2026)
    n = {d: _rows(r, fraction) for d, r in IMDB_ROWS.items()}
    titles, people = _ids("tt", n["title.basics"]), _ids("nm", n["name.basics"])
    paths = {d: folder / f"{d}.tsv.gz" for d in IMDB_ROWS}
    out = {
        "title.basics": _Gzip(paths["title.basics"], ["tconst", "titleType", "primaryTitle",
                                                      "originalTitle", "isAdult", "startYear",
                                                      "endYear", "runtimeMinutes", "genres"]),
        "title.crew": _Gzip(paths["title.crew"], ["tconst", "directors", "writers"]),
        "title.principals": _Gzip(paths["title.principals"], ["tconst", "ordering", "nconst",
                                                              "category", "job", "characters"]),
        "title.akas": _Gzip(paths["title.akas"], ["titleId", "ordering", "title", "region",
                                                  "language", "types", "attributes",
                                                  "isOriginalTitle"]),
        "title.episode": _Gzip(paths["title.episode"], ["tconst", "parentTconst", "seasonNumber",
                                                        "episodeNumber"]),
        "title.ratings": _Gzip(paths["title.ratings"], ["tconst", "averageRating", "numVotes"]),
    }
    # Per title: how many principals, akas; which titles are rated or episodes (the real shares).
    per_title = {"title.principals": n["title.principals"] / n["title.basics"],
                 "title.akas": n["title.akas"] / n["title.basics"]}
    rated_share = n["title.ratings"] / n["title.basics"]
    episode_share = n["title.episode"] / n["title.basics"]
    series = titles.gather(rng.integers(0, len(titles), max(1, len(titles) // 40)))
    for start in range(0, len(titles), chunk):
        ids = titles.slice(start, chunk)
        m = len(ids)
        title = _words(rng, m)
        year = rng.integers(1890, 2027, m)
        kind = pl.Series(TYPES).gather(rng.choice(len(TYPES), m, p=TYPE_SHARE))
        out["title.basics"].write(pl.DataFrame({
            "tconst": ids, "titleType": kind, "primaryTitle": title,
            "originalTitle": pl.select(pl.when(pl.lit(rng.random(m) < 0.1))
                                       .then(pl.lit(title) + " (original)")
                                       .otherwise(pl.lit(title))).to_series(),
            "isAdult": (rng.random(m) < 0.01).astype(np.int8),
            "startYear": _nullable_ints(rng, year, 0.1),
            "endYear": _nullable_ints(rng, year + rng.integers(0, 10, m), 0.97),
            "runtimeMinutes": _nullable_ints(rng, rng.integers(1, 240, m), 0.6),
            "genres": _pick_list(rng, pl.Series(GENRES), m, 1, 3, 0.05),
        }))
        out["title.crew"].write(pl.DataFrame({
            "tconst": ids,
            "directors": _pick_list(rng, people.gather(_skewed(rng, m, len(people))), m, 1, 2, 0.4),
            "writers": _pick_list(rng, people.gather(_skewed(rng, m, len(people))), m, 1, 3, 0.5),
        }))
        for dataset, make in (("title.principals", _principals), ("title.akas", _akas)):
            k = rng.poisson(per_title[dataset] - 1, m) + 1
            rows = pl.DataFrame({"t": ids.gather(np.repeat(np.arange(m), k))}).with_columns(
                pl.int_range(1, pl.len() + 1).over("t").alias("ordering"))
            out[dataset].write(make(rng, rows, people))
        rated = pl.Series(rng.random(m) < rated_share)
        r = int(rated.sum())
        out["title.ratings"].write(pl.DataFrame({
            "tconst": ids.filter(rated),
            "averageRating": pl.Series(np.round(rng.uniform(1, 10, r), 1)),
            "numVotes": np.maximum(5, np.exp(rng.normal(3.5, 2.0, r))).astype(np.int64),
        }).with_columns(pl.col("averageRating").round(1).cast(pl.String)))
        episode = pl.Series(rng.random(m) < episode_share)
        e = int(episode.sum())
        out["title.episode"].write(pl.DataFrame({
            "tconst": ids.filter(episode),
            "parentTconst": series.gather(rng.integers(0, len(series), e)),
            "seasonNumber": _nullable_ints(rng, rng.integers(1, 30, e), 0.2),
            "episodeNumber": _nullable_ints(rng, rng.integers(1, 200, e), 0.2),
        }))
    for writer in out.values():
        writer.close()
    names = _Gzip(paths["name.basics"], ["nconst", "primaryName", "birthYear", "deathYear",
                                         "primaryProfession", "knownForTitles"])
    for start in range(0, len(people), chunk):
        ids = people.slice(start, chunk)
        m = len(ids)
        first = _words(rng, m, 1)
        last = _words(rng, m, 1)
        birth = rng.integers(1850, 2015, m)
        names.write(pl.DataFrame({
            "nconst": ids, "primaryName": first + " " + last,
            "birthYear": _nullable_ints(rng, birth, 0.6),
            "deathYear": _nullable_ints(rng, birth + rng.integers(20, 100, m), 0.9),
            "primaryProfession": _pick_list(rng, pl.Series(PROFESSIONS), m, 1, 3, 0.1),
            "knownForTitles": _pick_list(rng, titles.gather(rng.integers(0, len(titles), m)), m,
                                         1, 4, 0.1),
        }))
    names.close()
    return paths


def _principals(rng, rows, people):
    import polars as pl

    m = rows.height
    category = pl.Series(CATEGORIES).gather(rng.integers(0, len(CATEGORIES), m))
    character = _words(rng, m, 2)
    acting = category.is_in(["actor", "actress", "self"])
    return pl.DataFrame({
        "tconst": rows["t"], "ordering": rows["ordering"],
        "nconst": people.gather(_skewed(rng, m, len(people))),
        "category": category,
        "job": pl.select(pl.when(pl.lit(rng.random(m) < 0.15)).then(pl.lit("producer"))
                         .otherwise(None)).to_series().cast(pl.String),
        "characters": pl.select(pl.when(pl.lit(acting)).then(
            pl.lit('["') + pl.lit(character).str.replace_all('"', "") + pl.lit('"]'))
            .otherwise(None)).to_series().cast(pl.String),
    })


def _akas(rng, rows, _people):
    import polars as pl

    m = rows.height
    title = _words(rng, m)
    return pl.DataFrame({
        "titleId": rows["t"], "ordering": rows["ordering"], "title": title,
        "region": pl.Series(REGIONS, dtype=pl.String).gather(rng.integers(0, len(REGIONS), m)),
        "language": pl.select(pl.when(pl.lit(rng.random(m) < 0.7)).then(None)
                              .otherwise(pl.lit("en"))).to_series().cast(pl.String),
        "types": _pick_list(rng, pl.Series(AKA_TYPES), m, 1, 1, 0.6),
        "attributes": pl.select(pl.when(pl.lit(rng.random(m) < 0.95)).then(None)
                                .otherwise(pl.lit("literal title"))).to_series().cast(pl.String),
        "isOriginalTitle": (rows["ordering"] == 1).cast(pl.Int8),
    })


def generate_movielens(folder: Path, fraction: float, titles: int, chunk_users: int = 20_000) -> Path:
    """``ml-32m.zip`` with the four CSVs (links point at IMDB titles 1..``titles``)."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(32)
    n_movies = _rows(MOVIELENS_ROWS["movies.csv"], fraction)
    users = max(10, round(ML_USERS * fraction))
    per_user = MOVIELENS_ROWS["ratings.csv"] / ML_USERS
    movie_ids = np.sort(rng.choice(np.arange(1, max(n_movies * 3, 10) + 1), n_movies,
                                   replace=False)).astype(np.int32)
    tmp = folder / "ml-csv"
    tmp.mkdir(parents=True, exist_ok=True)
    with open(tmp / "ratings.csv", "wb") as f:
        f.write(b"userId,movieId,rating,timestamp\n")
        for u0 in range(1, users + 1, chunk_users):
            u = np.arange(u0, min(users + 1, u0 + chunk_users), dtype=np.int32)
            k = np.maximum(1, rng.poisson(per_user, len(u)))
            user = np.repeat(u, k)
            frame = pl.DataFrame({
                "userId": user,
                "movieId": movie_ids[_skewed(rng, len(user), n_movies)],
            }).unique(["userId", "movieId"]).sort(["userId", "movieId"])
            r = frame.height
            frame.with_columns(
                rating=pl.Series((rng.integers(1, 11, r) / 2).astype(np.float32)),
                timestamp=pl.Series(rng.integers(789_652_009, 1_697_000_000, r)),
            ).write_csv(f, include_header=False, float_precision=1)
    title = _words(rng, n_movies)
    article = pl.Series(rng.random(n_movies) < 0.05)
    year = pl.Series(rng.integers(1900, 2024, n_movies)).cast(pl.String)
    pl.DataFrame({
        "movieId": movie_ids,
        "title": pl.select(pl.when(pl.lit(article)).then(pl.lit(title) + ", The")
                           .otherwise(pl.lit(title)) + " (" + pl.lit(year) + ")").to_series(),
        "genres": _pick_list(rng, pl.Series(ML_GENRES), n_movies, 1, 4, 0.0, "|").fill_null(
            "(no genres listed)"),
    }).write_csv(tmp / "movies.csv")
    imdb = rng.choice(np.arange(1, titles + 1), n_movies, replace=False)
    pl.DataFrame({
        "movieId": movie_ids,
        "imdbId": pl.Series(imdb).cast(pl.String).str.zfill(7),
        "tmdbId": _nullable_ints(rng, rng.integers(1, 1_300_000, n_movies), 0.01),
    }).write_csv(tmp / "links.csv")
    n_tags = _rows(MOVIELENS_ROWS["tags.csv"], fraction)
    tag = _words(rng, n_tags, 2)
    variant = rng.random(n_tags)
    pl.DataFrame({
        "userId": np.sort(rng.integers(1, users + 1, n_tags)).astype(np.int32),
        "movieId": movie_ids[_skewed(rng, n_tags, n_movies)],
        "tag": pl.select(pl.when(pl.lit(variant < 0.3)).then(pl.lit(tag).str.to_lowercase())
                         .when(pl.lit(variant < 0.35)).then(pl.lit(tag) + " ")
                         .otherwise(pl.lit(tag))).to_series(),
        "timestamp": rng.integers(1_137_000_000, 1_697_000_000, n_tags),
    }).write_csv(tmp / "tags.csv")
    path = folder / f"{RELEASE}.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for member in ("movies.csv", "ratings.csv", "tags.csv", "links.csv"):
            zf.write(tmp / member, f"{RELEASE}/{member}")
    shutil.rmtree(tmp)
    return path


def generate(folder: Path, fraction: float, log=print) -> dict[str, Path]:
    """The raw files of ``fraction`` x the real size, in ``folder`` (written once, then reused)."""
    done = folder / "done.json"
    if done.exists():
        return {k: Path(v) for k, v in json.loads(done.read_text()).items()}
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    start = time.perf_counter()
    paths = {f"imdb:{d}": p for d, p in generate_imdb(folder, fraction).items()}
    paths["movielens"] = generate_movielens(folder, fraction,
                                            _rows(IMDB_ROWS["title.basics"], fraction))
    size = sum(p.stat().st_size for p in paths.values())
    log(f"generated {fraction:g}x the real sources in {folder} ({size / 2**20:,.0f} MiB "
        f"compressed) in {time.perf_counter() - start:.0f} s")
    done.write_text(json.dumps({k: str(v) for k, v in paths.items()}))
    return paths


# -- stages: what the assets call -----------------------------------------------------------

def land(lake_root: Path, paths: dict[str, Path]) -> None:
    """Put the generated files in the raw zone as ``land_snapshot`` would (hard links), with
    their landing states, so each stage reads them as the assets do."""
    from lakehouse.lake.location import Lake, raw_key
    from lakehouse.lake.snapshots import LandingState, state_key

    lake = Lake.from_env(str(lake_root))
    for stage, src in paths.items():
        prefix = _raw_prefix(stage)
        key = raw_key(prefix, date(2026, 12, 1), src.name)
        dest = Path(lake.uri(key))
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists():
            os.link(src, dest)
        state = LandingState(key=key, sha256=f"synthetic-{src.stat().st_size}",
                             size=src.stat().st_size, landed_at="2026-12-01T00:00:00+00:00")
        lake.write_bytes(state_key(prefix), json.dumps(state.__dict__).encode())


def _raw_prefix(stage: str) -> str:
    """Where the assets land a stage's file: the raw asset key's path."""
    from lakehouse.lake.location import raw_prefix

    if stage.startswith("imdb:"):
        from lakehouse.transforms.imdb import IMDB_TABLES

        return raw_prefix(next(t for t in IMDB_TABLES if t.dataset == stage[5:]).raw_asset)
    from lakehouse.sources.movielens import RAW_RELEASE

    return raw_prefix(RAW_RELEASE, RELEASE)


def empty_tmdb_silver(lake_root: Path) -> None:
    """TMDB silver, empty with its real schema: TMDB is an API asked a few hundred titles a
    day, not a bulk source; the gold models read its tables."""
    import polars as pl

    from lakehouse.lake.location import Lake
    from lakehouse.lake.snapshots import write_snapshot_table
    from lakehouse.transforms.tmdb import (
        TMDB_CREDITS_SCHEMA,
        TMDB_MOVIES_SCHEMA,
        TMDB_TV_SCHEMA,
    )

    lake = Lake.from_env(str(lake_root))
    for table, schema in (("tmdb_movies", TMDB_MOVIES_SCHEMA), ("tmdb_tv", TMDB_TV_SCHEMA),
                          ("tmdb_credits", TMDB_CREDITS_SCHEMA)):
        write_snapshot_table(lake, lake.table_uri("silver", table), pl.LazyFrame(schema=schema),
                             "synthetic-empty")


def run_stage(stage: str, lake_root: Path, duckdb_file: Path | None = None) -> dict:
    """One stage, in this process: ``{"rows": ..., "models": {...}}`` (rows written)."""
    from lakehouse.lake.location import Lake
    from lakehouse.lake.snapshots import read_state

    lake = Lake.from_env(str(lake_root))
    if stage.startswith("imdb:"):
        from lakehouse.load.movies import build_imdb_table
        from lakehouse.transforms.imdb import IMDB_TABLES

        spec = next(t for t in IMDB_TABLES if t.dataset == stage[5:])
        state = read_state(lake, _raw_prefix(stage))
        assert state is not None
        outcome = build_imdb_table(lake, spec, state)
        return {"rows": delta_rows(outcome.uri), "tables": [outcome.table]}
    if stage == "movielens":
        from lakehouse.load.movies import build_movielens_tables

        state = read_state(lake, _raw_prefix(stage))
        assert state is not None
        outcomes = build_movielens_tables(lake, state)
        return {"rows": sum(delta_rows(o.uri) for o in outcomes),
                "tables": [o.table for o in outcomes]}
    if stage == "gold":
        return run_gold(lake_root, duckdb_file or lake_root.parent / "gold.duckdb")
    raise ValueError(stage)


def run_gold(lake_root: Path, duckdb_file: Path) -> dict:
    """The movie models as the gold asset builds them: ``dbt build`` (models and their tests)
    on the lake, then each model landed as Delta; the time of each model from run_results."""
    from lakehouse.settings import DBT_EXECUTABLE, DBT_PROJECT_DIR

    # A target folder of its own (run_results.json), so a bench never races another dbt run.
    target = lake_root.parent / "dbt-target"
    env = {**os.environ, "LAKEHOUSE_ROOT": str(lake_root),
           "LAKEHOUSE_DUCKDB_PATH": str(duckdb_file), "DBT_TARGET_PATH": str(target)}
    duckdb_file.unlink(missing_ok=True)
    dbt = [DBT_EXECUTABLE, "build", "--select", "tag:movies", "--profiles-dir", "."]
    start = time.perf_counter()
    done = subprocess.run(dbt, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True)
    dbt_seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError("dbt build failed:\n" + done.stdout[-3000:])
    results = json.loads((target / "run_results.json").read_text())["results"]
    models = {r["unique_id"]: r["execution_time"] for r in results}
    built = [r["unique_id"].split(".")[-1] for r in results
             if r["unique_id"].startswith("model.")]
    os.environ.update({"LAKEHOUSE_ROOT": str(lake_root),
                       "LAKEHOUSE_DUCKDB_PATH": str(duckdb_file)})
    if not (DBT_PROJECT_DIR / "target" / "manifest.json").exists():  # what the assets load
        shutil.copytree(target, DBT_PROJECT_DIR / "target", dirs_exist_ok=True)
    from lakehouse.defs.gold.assets import land_models_as_delta
    from lakehouse.lake.location import Lake

    start = time.perf_counter()
    facts = land_models_as_delta(Lake.from_env(str(lake_root)), built)
    land_seconds = time.perf_counter() - start
    return {"rows": sum(int(f.get("dagster/row_count", 0)) for f in facts.values()),
            "models": models, "dbt_seconds": dbt_seconds, "land_seconds": land_seconds}


def delta_rows(uri: str) -> int:
    """Rows of a Delta table from its log (the data is not read back)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    actions = pa.table(DeltaTable(uri).get_add_actions(flatten=True))
    return int(pc.sum(actions["num_records"]).as_py() or 0)


def child_main() -> None:
    """``python bench/movie_data.py STAGE LAKE_ROOT``: one stage, its figures as a JSON line;
    ``python bench/movie_data.py generate FOLDER FRACTION``: the inputs."""
    import resource

    if sys.argv[1] == "generate":
        generate(Path(sys.argv[2]), float(sys.argv[3]))
        return
    stage, lake_root = sys.argv[1], Path(sys.argv[2])
    import lakehouse.load.movies  # noqa: F401  (imports are a fixed cost, not the work)

    def cpu() -> float:  # this process and what it waited for (dbt, for gold)
        own, waited = (resource.getrusage(resource.RUSAGE_SELF),
                       resource.getrusage(resource.RUSAGE_CHILDREN))
        return own.ru_utime + own.ru_stime + waited.ru_utime + waited.ru_stime

    start, start_cpu = time.perf_counter(), cpu()
    result = run_stage(stage, lake_root)
    result["seconds"] = time.perf_counter() - start
    result["cpu_seconds"] = cpu() - start_cpu
    result["peak_rss_mib"] = peak_rss_mib()
    # dbt's own process, for gold (its ru_maxrss starts from this process's RSS at its fork).
    result["children_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps(result))


def peak_rss_mib() -> float:
    """This process's own peak RSS: VmHWM belongs to the address space, so unlike ``ru_maxrss``
    (which Linux carries over a fork and exec from the parent's size) it starts at exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate_in_child(folder: Path, fraction: float) -> dict[str, Path]:
    """``generate`` in its own process, so the caller stays small (a child forked from a big
    process starts its ``ru_maxrss`` at that size)."""
    if not (folder / "done.json").exists():
        subprocess.run([sys.executable, __file__, "generate", str(folder), str(fraction)],
                       check=True)
    return generate(folder, fraction)


def run_child(stage: str, lake_root: Path) -> dict:
    """``stage`` in a fresh process (so its peak RSS is its own)."""
    done = subprocess.run([sys.executable, __file__, stage, str(lake_root)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1],
                "stderr": done.stderr[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    child_main()
