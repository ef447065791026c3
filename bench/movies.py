"""Benchmark: MovieLens ratings (ml-25m size) and IMDB title.basics (12M rows) to silver Delta.

Inputs are generated here, in the real formats, into a temporary folder:
- ``ratings.csv``: 25,000,095 rows ``userId,movieId,rating,timestamp`` like ml-25m (ordered
  by user, then movie, as the real file);
- ``title.basics.tsv.gz``: 12,000,000 rows of IMDB's TSV (``\\N`` nulls, stray ``"`` in titles,
  a few bad years to quarantine).

Each case runs in its own process, so its peak RSS is its own:
- ``lakehouse``: what the silver assets run (``lakehouse.load.movies``: transform, one
  Delta commit, quarantine);
- ``reference``: pandas doing the same work (read, clean, deduplicate, write Parquet);
- ``floor_polars`` / ``floor_pyarrow`` / ``floor_duckdb``: read the same file and write it
  unchanged as Parquet; the fastest is the floor.

Usage: python bench/movies.py [--ratings 25000095] [--titles 12000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RATINGS_ROWS = 25_000_095
TITLE_ROWS = 12_000_000
CASES = ("lakehouse", "reference", "floor_polars", "floor_pyarrow", "floor_duckdb")


# -- inputs ----------------------------------------------------------------------------------

def generate_ratings(path: Path, rows: int, chunk: int = 5_000_000) -> None:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(25)
    users = 162_541
    stars = np.arange(1, 11, dtype=np.float32) / 2
    with open(path, "wb") as out:
        out.write(b"userId,movieId,rating,timestamp\n")
        done = 0
        while done < rows:
            n = min(chunk, rows - done)
            # Users in order, as in the real file; movies and times at random.
            user = (np.arange(done, done + n, dtype=np.int64) * users // rows + 1).astype(np.int32)
            # As in the real file: ordered by user, then movie, no movie twice for a user.
            index = np.arange(done, done + n, dtype=np.int64)
            first = ((user.astype(np.int64) - 1) * rows + users - 1) // users
            movie = ((user.astype(np.int64) * 7907) % 100_000 + (index - first) * 600 + 1
                     ).astype(np.int32)
            frame = pl.DataFrame({
                "userId": user, "movieId": movie,
                "rating": stars[rng.integers(0, 10, n)],
                "timestamp": rng.integers(789_652_009, 1_574_327_703, n, dtype=np.int64),
            })
            frame.write_csv(out, include_header=False, float_precision=1)
            done += n


WORDS = [
    "the", "of", "a", "love", "night", "man", "day", "last", "story", "dark", "city", "king",
    "house", "world", "life", "war", "girl", "blood", "secret", "game", "home", "time", "dead",
    "black", "lost", "red", "river", "star", "road", "summer", "heart", "return", "dream",
    "fire", "island", "ghost", "journey", "shadow", "moon",
]
TYPES = ["movie", "short", "tvEpisode", "tvSeries", "video", "tvMovie", "tvMiniSeries",
         "videoGame", "tvSpecial"]
GENRES = ["Drama", "Comedy", "Documentary", "Action", "Adventure", "Romance", "Thriller",
          "Crime", "Horror", "Family", "Animation", "Sci-Fi", "Fantasy", "Music", "Short"]


def generate_titles(path: Path, rows: int, chunk: int = 2_000_000) -> None:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(12)
    words = pl.Series(WORDS)
    genres = pl.Series(GENRES)
    tsv = path.with_suffix("")
    with open(tsv, "wb") as out:
        out.write(b"tconst\ttitleType\tprimaryTitle\toriginalTitle\tisAdult\tstartYear\t"
                  b"endYear\truntimeMinutes\tgenres\n")
        done = 0
        while done < rows:
            n = min(chunk, rows - done)
            ids = np.arange(done + 1, done + n + 1)
            w = [words.gather(rng.integers(0, len(WORDS), n)) for _ in range(3)]
            nwords = rng.integers(1, 4, n)
            title = pl.select(
                pl.when(pl.lit(nwords) == 1).then(w[0].str.to_titlecase())
                .when(pl.lit(nwords) == 2).then(pl.concat_str([w[0], w[1]], separator=" ")
                                                 .str.to_titlecase())
                .otherwise(pl.concat_str([w[0], w[1], w[2]], separator=" ").str.to_titlecase())
            ).to_series()
            # A stray quote now and then: data, not quoting.
            title = pl.select(pl.when(pl.lit(rng.random(n) < 0.01))
                              .then(pl.lit('"') + pl.lit(title)).otherwise(pl.lit(title))
                              ).to_series()
            start = rng.integers(1890, 2026, n).astype(np.int64)
            g = [genres.gather(rng.integers(0, len(GENRES), n)) for _ in range(2)]
            frame = pl.DataFrame({
                "tconst": pl.select(pl.lit("tt") + pl.lit(pl.Series(ids)).cast(pl.String)
                                    .str.zfill(7)).to_series(),
                "titleType": pl.Series(TYPES).gather(rng.integers(0, len(TYPES), n)),
                "primaryTitle": title,
                "originalTitle": title,
                "isAdult": (rng.random(n) < 0.02).astype(np.int8),
                "startYear": pl.Series(start.astype(str)).set(
                    pl.Series(rng.random(n) < 0.08), "\\N"),
                "endYear": pl.Series(np.where(rng.random(n) < 0.05, start + 3, 0).astype(str))
                .replace("0", "\\N"),
                "runtimeMinutes": pl.Series(rng.integers(1, 200, n).astype(str)).set(
                    pl.Series(rng.random(n) < 0.3), "\\N"),
                "genres": pl.select(pl.when(pl.lit(rng.random(n) < 0.5)).then(pl.lit(g[0]))
                                    .otherwise(pl.concat_str([pl.lit(g[0]), pl.lit(g[1])],
                                                             separator=","))).to_series(),
            })
            if done == 0:  # a few bad years, to quarantine
                frame = frame.with_columns(
                    pl.when(pl.int_range(n) % 1_000_003 == 5).then(pl.lit("19x9"))
                    .otherwise(pl.col("startYear")).alias("startYear"))
            frame.write_csv(out, include_header=False, separator="\t", quote_style="never")
            done += n
    subprocess.run(["gzip", "-6", "-f", str(tsv)], check=True)


# -- cases (each in its own process) ---------------------------------------------------------

WARM = {"lakehouse": ["lakehouse.load.movies"], "reference": ["pandas", "pyarrow.parquet"],
        "floor_polars": ["polars"], "floor_pyarrow": ["pyarrow.csv", "pyarrow.parquet"],
        "floor_duckdb": ["duckdb"]}


def run_case(dataset: str, case: str, src: Path, work: Path) -> dict:
    import importlib

    for module in WARM[case]:  # imports are a fixed cost, not the work measured
        importlib.import_module(module)
    start = time.perf_counter()
    rows = CASE_FUNCS[(dataset, case)](src, work)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds": seconds, "rows": rows, "peak_rss": peak}


def lakehouse_ratings(src: Path, work: Path) -> int:

    from lakehouse.lake.location import Lake
    from lakehouse.lake.snapshots import write_quarantine
    from lakehouse.load.movies import load_movielens_member
    from lakehouse.transforms.movielens import MOVIELENS_TABLES

    # The silver step of silver.build_movielens_tables for ratings.csv, the zip already
    # extracted (extraction is the same for every case and not timed).
    lake = Lake.from_env(str(work / "lake"))
    uri = lake.table_uri("silver", "movielens_ratings")
    spec = next(t for t in MOVIELENS_TABLES if t.table == "movielens_ratings")
    bad = load_movielens_member(lake, uri, src, spec, "bench#ratings.csv", "bench")
    write_quarantine(lake, bad, "bench#ratings.csv")
    return delta_rows(uri)


def delta_rows(uri: str) -> int:
    """Rows of a Delta table from its log (the data is not read back)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    actions = pa.table(DeltaTable(uri).get_add_actions(flatten=True))
    return int(pc.sum(actions["num_records"]).as_py() or 0)


def reference_ratings(src: Path, work: Path) -> int:
    import pandas as pd

    # A fair pandas: typed parsing by the C reader (faster than text then to_numeric, though a
    # single bad value would fail the whole file), range check, timestamps, dedup, Parquet.
    df = pd.read_csv(src, dtype={"userId": "int32", "movieId": "int32", "rating": "float32",
                                 "timestamp": "int64"})
    df = df[df["rating"].between(0.5, 5.0)]
    out = pd.DataFrame({
        "user_id": df["userId"], "movie_id": df["movieId"], "rating": df["rating"],
        "rated_at": pd.to_datetime(df["timestamp"], unit="s", utc=True),
    })
    out = out.drop_duplicates(["user_id", "movie_id"], keep="last")
    out.to_parquet(work / "reference.parquet", index=False)
    return len(out)


def lakehouse_titles(src: Path, work: Path) -> int:

    from lakehouse.lake.location import Lake
    from lakehouse.lake.snapshots import LandingState
    from lakehouse.load.movies import build_imdb_table
    from lakehouse.transforms.imdb import IMDB_TABLES

    # The silver asset's own function, on a raw version landed in a local lake.
    lake = Lake.from_env(str(work / "lake"))
    key = "raw/imdb/title_basics/2026/11/23/title.basics.tsv.gz"
    dest = Path(lake.uri(key))
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.link(src, dest)
    spec = next(t for t in IMDB_TABLES if t.table == "imdb_titles")
    state = LandingState(key=key, sha256="bench", size=src.stat().st_size, landed_at="")
    outcome = build_imdb_table(lake, spec, state)
    return delta_rows(outcome.uri)


def reference_titles(src: Path, work: Path) -> int:
    import csv

    import pandas as pd

    df = pd.read_csv(src, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, na_values=["\\N"],
                     keep_default_na=False)
    years = {c: pd.to_numeric(df[c], errors="coerce") for c in
             ("startYear", "endYear", "runtimeMinutes")}
    bad = (~df["tconst"].str.match(r"^tt\d{7,}$", na=False)
           | ~df["isAdult"].isin(["0", "1"]))
    for column, parsed in years.items():
        bad |= df[column].notna() & parsed.isna()
    good = ~bad
    out = pd.DataFrame({
        "tconst": df["tconst"][good], "title_type": df["titleType"][good],
        "primary_title": df["primaryTitle"][good], "original_title": df["originalTitle"][good],
        "is_adult": df["isAdult"][good] == "1",
        "start_year": years["startYear"][good].astype("Int32"),
        "end_year": years["endYear"][good].astype("Int32"),
        "runtime_minutes": years["runtimeMinutes"][good].astype("Int32"),
        "genres": df["genres"][good].str.split(","),
    })
    out["decade"] = (out["start_year"] // 10 * 10).astype("Int32")
    out = out.drop_duplicates("tconst")
    out.to_parquet(work / "reference.parquet", index=False)
    return len(out)


def floor_polars(src: Path, work: Path, **options) -> int:
    import polars as pl

    if src.suffix == ".gz":  # Polars reads gzip only whole, in memory
        frame = pl.read_csv(src, **options)
        frame.write_parquet(work / "floor.parquet")
        return frame.height
    pl.scan_csv(src, **options).sink_parquet(work / "floor.parquet")
    return pl.scan_parquet(work / "floor.parquet").select(pl.len()).collect().item()


def floor_pyarrow(src: Path, work: Path, **options) -> int:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    stream = pa.input_stream(str(src), compression="gzip" if src.suffix == ".gz" else None)
    reader = pacsv.open_csv(stream, **options)
    rows = 0
    with pq.ParquetWriter(work / "floor.parquet", reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def floor_duckdb(src: Path, work: Path, sql_options: str = "") -> int:
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads = 2")
    out = work / "floor.parquet"
    con.execute(f"COPY (SELECT * FROM read_csv('{src}'{sql_options})) TO '{out}' "
                "(FORMAT parquet)")
    return con.execute(f"SELECT count(*) FROM '{out}'").fetchone()[0]


def _pyarrow_tsv() -> dict:
    import pyarrow.csv as pacsv

    return {"parse_options": pacsv.ParseOptions(delimiter="\t", quote_char=False),
            "convert_options": pacsv.ConvertOptions(null_values=["\\N"],
                                                    strings_can_be_null=True)}


CASE_FUNCS = {
    ("ratings", "lakehouse"): lakehouse_ratings,
    ("ratings", "reference"): reference_ratings,
    ("ratings", "floor_polars"): lambda s, w: floor_polars(s, w),
    ("ratings", "floor_pyarrow"): lambda s, w: floor_pyarrow(s, w),
    ("ratings", "floor_duckdb"): lambda s, w: floor_duckdb(s, w),
    ("titles", "lakehouse"): lakehouse_titles,
    ("titles", "reference"): reference_titles,
    ("titles", "floor_polars"): lambda s, w: floor_polars(
        s, w, separator="\t", quote_char=None, null_values="\\N"),
    ("titles", "floor_pyarrow"): lambda s, w: floor_pyarrow(s, w, **_pyarrow_tsv()),
    ("titles", "floor_duckdb"): lambda s, w: floor_duckdb(
        s, w, ", delim='\\t', quote='', escape='', nullstr='\\N', header=true"),
}


# -- driver ------------------------------------------------------------------------------------

def measure(dataset: str, case: str, src: Path, root: Path) -> dict:
    work = root / f"{dataset}-{case}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cmd = [sys.executable, __file__, "--case", dataset, case, str(src), str(work)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    shutil.rmtree(work, ignore_errors=True)
    os.sync()  # the next case does not share this one's pending writes
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(dataset: str, rows: int, results: dict[str, dict]) -> list[str]:
    ref = results["reference"].get("seconds")
    floors = {c: r["seconds"] for c, r in results.items() if c.startswith("floor") and "seconds" in r}
    floor_case = min(floors, key=floors.get) if floors else None
    floor = floors.get(floor_case) if floor_case else None
    lines = [f"{dataset}: {rows:,} input rows", f"  {'case':<14}{'seconds':>9}{'rows/s':>14}"
             f"{'peak RSS':>11}{'rows out':>14}"]
    for case, r in results.items():
        if "error" in r:
            lines.append(f"  {case:<14} failed: {r['error']}")
            continue
        lines.append(f"  {case:<14}{r['seconds']:>9.2f}{rows / r['seconds']:>14,.0f}"
                     f"{r['peak_rss'] / 2**30:>9.2f} G{r['rows']:>14,}")
    ours = results["lakehouse"].get("seconds")
    if ours and ref:
        lines.append(f"  speed-up vs pandas reference: {ref / ours:.2f}x (target >= 2.5x)")
    if ours and floor:
        lines.append(f"  time vs floor ({floor_case}, {floor:.2f} s): {ours / floor:.2f}x "
                     "(target <= 1.5x)")
    if "peak_rss" in results["lakehouse"]:
        lines.append(f"  peak RSS: {results['lakehouse']['peak_rss'] / 2**30:.2f} GiB "
                     "(target <= 2 GiB)")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=RATINGS_ROWS)
    parser.add_argument("--titles", type=int, default=TITLE_ROWS)
    parser.add_argument("--keep", type=Path, help="generate into (and reuse) this folder")
    parser.add_argument("--only", choices=["ratings", "titles"])
    parser.add_argument("--case", nargs=4, metavar=("DATASET", "CASE", "SRC", "WORK"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        dataset, case, src, work = args.case
        print(json.dumps(run_case(dataset, case, Path(src), Path(work))))
        return 0
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-movies-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        inputs = {"ratings": (root / f"ratings-{args.ratings}.csv", args.ratings,
                              generate_ratings),
                  "titles": (root / f"title.basics-{args.titles}.tsv.gz", args.titles,
                             generate_titles)}
        out: list[str] = [f"bench/movies.py on {os.cpu_count()} cores, Python {sys.version.split()[0]}"]
        for dataset, (path, rows, generate) in inputs.items():
            if args.only and dataset != args.only:
                continue
            if not path.exists():
                t0 = time.perf_counter()
                generate(path, rows)
                print(f"generated {path.name} ({path.stat().st_size / 2**20:,.0f} MiB) in "
                      f"{time.perf_counter() - t0:.0f} s", flush=True)
            # Every case reads the file from the page cache: flush the generator's writes and
            # read it once, so the first case measured does not pay for the disk.
            os.sync()
            with open(path, "rb") as warm:
                while warm.read(16 << 20):
                    pass
            results = {}
            for case in CASES:
                results[case] = measure(dataset, case, path, root)
                r = results[case]
                print(f"  {dataset}/{case}: " + (f"{r['seconds']:.2f} s" if "seconds" in r
                                                 else r["error"]), flush=True)
            out += report(dataset, rows, results)
        print("\n".join(out))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
