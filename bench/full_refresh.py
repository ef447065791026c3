"""Benchmark: a full refresh of the movie pipeline at the real sources' size, raw to gold.

Inputs (``bench/movie_data.py``, written once into ``data/bench/movies/<fraction>/`` and reused):
the seven IMDB datasets at their real row counts (11M titles, 50M akas, 11M crew, 9M episodes,
90M principals, 1.5M ratings, 14M names) as gzip TSV, and MovieLens ml-32m (32M ratings, 2M
tags, 87,585 movies and links) as its zip; synthetic, of the real columns, order and formats.

Stages, each in a fresh process (peak RSS its own), with the functions the Dagster assets call:
raw -> silver for each IMDB dataset (``build_imdb_table``) and for the MovieLens release
(``build_movielens_tables``), then gold: ``dbt build`` of the movie models and their tests (as
the gold asset runs it) and each model landed as Delta (``land_models_as_delta``). TMDB silver
is empty (an API enrichment, not a bulk source). Printed: wall time and peak RSS per stage, the
time of each dbt model (run_results.json), and for each stage DuckDB doing the same read and
write (IMDB: the gzip TSV as text to Parquet; MovieLens: the zip's CSVs to Parquet; gold: the
silver tables read into DuckDB and the gold tables written as Parquet, without the models' work).

Targets on a 2-core machine: under 10 minutes end to end, at most 4 GiB; moonshot 3 minutes.

Usage: python bench/full_refresh.py [--fraction 1.0] [--no-duckdb] [--keep]
       python bench/full_refresh.py --fraction 0.1      # a tenth of the real size, to try it
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import movie_data  # noqa: E402

PROJECT = Path(__file__).resolve().parent.parent
TARGET_SECONDS, MOONSHOT_SECONDS, TARGET_GIB = 600, 180, 4.0


# -- DuckDB doing the same read and write (each in its own process) ---------------------------

def duckdb_stage(stage: str, lake_root: Path, inputs: dict[str, str]) -> int:
    import duckdb

    out = lake_root.parent / "duckdb-out"
    out.mkdir(exist_ok=True)
    con = duckdb.connect(str(lake_root.parent / "duckdb-floor.duckdb"))
    if stage.startswith("imdb:"):
        src = inputs[stage]
        con.execute(f"COPY (SELECT * FROM read_csv('{src}', delim='\\t', quote='', escape='', "
                    f"nullstr='\\N', header=true, all_varchar=true)) TO "
                    f"'{out / (stage[5:] + '.parquet')}' (FORMAT parquet)")
        return con.execute(f"SELECT count(*) FROM '{out / (stage[5:] + '.parquet')}'").fetchone()[0]
    if stage == "movielens":
        rows = 0
        with tempfile.TemporaryDirectory(prefix="bench-ml-") as tmp, \
                zipfile.ZipFile(inputs["movielens"]) as zf:
            for info in zf.infolist():
                dest = Path(tmp) / Path(info.filename).name
                with zf.open(info) as f, open(dest, "wb") as w:
                    shutil.copyfileobj(f, w, 8 << 20)
                target = out / f"{dest.stem}.parquet"
                con.execute(f"COPY (SELECT * FROM read_csv('{dest}', all_varchar=true)) TO "
                            f"'{target}' (FORMAT parquet)")
                rows += con.execute(f"SELECT count(*) FROM '{target}'").fetchone()[0]
        return rows
    if stage == "gold":
        from deltalake import DeltaTable

        rows = 0
        for table in sorted(p.name for p in (lake_root / "silver").iterdir()):
            files = DeltaTable(str(lake_root / "silver" / table)).file_uris()
            if files:
                con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM "
                            f"read_parquet({files!r})")
        gold = duckdb.connect(str(lake_root.parent / "gold.duckdb"), read_only=True)
        for (model,) in gold.execute("SELECT table_name FROM information_schema.tables "
                                     "WHERE table_schema = 'main'").fetchall():
            gold.execute(f'COPY (SELECT * FROM main."{model}") TO '
                         f"'{out / (model + '.parquet')}' (FORMAT parquet)")
            rows += gold.execute(f'SELECT count(*) FROM main."{model}"').fetchone()[0]
        return rows
    raise ValueError(stage)


def duckdb_child(stage: str, lake_root: Path, inputs: Path) -> dict:
    done = subprocess.run([sys.executable, __file__, "--duckdb-child", stage, str(lake_root),
                           str(inputs)], capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- driver --------------------------------------------------------------------------------------

def fmt(r: dict) -> str:
    if "seconds" not in r:
        return f"{'failed: ' + r.get('error', '')[:60]:>24}"
    return f"{r['seconds']:>9.1f} s{r['peak_rss_mib'] / 1024:>8.2f} GiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fraction", type=float, default=1.0,
                        help="of the real sources' size (default 1.0; 0.1 to try it)")
    parser.add_argument("--cache", type=Path, default=PROJECT / "data" / "bench" / "movies")
    parser.add_argument("--no-duckdb", action="store_true", help="skip the DuckDB comparison")
    parser.add_argument("--keep", action="store_true", help="keep the lake built (for a look)")
    parser.add_argument("--duckdb-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.duckdb_child:
        stage, lake_root, inputs = args.duckdb_child
        start = time.perf_counter()
        rows = duckdb_stage(stage, Path(lake_root), json.loads(Path(inputs).read_text()))
        print(json.dumps({"seconds": time.perf_counter() - start, "rows": rows,
                          "peak_rss_mib": movie_data.peak_rss_mib()}))
        return 0

    print(f"bench/full_refresh.py: {args.fraction:g}x the real sources, {os.cpu_count()} cores, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    folder = args.cache / f"{args.fraction:g}"
    start = time.perf_counter()
    inputs = movie_data.generate_in_child(folder, args.fraction)
    print(f"inputs ready in {time.perf_counter() - start:.0f} s (cached in {folder}): " + ", ".join(
        f"{Path(p).name} {Path(p).stat().st_size / 2**20:,.0f} MiB" for p in inputs.values()),
        flush=True)
    work = args.cache / f"refresh-{args.fraction:g}"
    shutil.rmtree(work, ignore_errors=True)
    lake = work / "lake"
    movie_data.land(lake, inputs)
    movie_data.empty_tmdb_silver(lake)
    inputs_file = work / "inputs.json"
    inputs_file.write_text(json.dumps({k: str(v) for k, v in inputs.items()}))
    os.sync()

    ours: dict[str, dict] = {}
    floor: dict[str, dict] = {}
    wall = time.perf_counter()
    for stage in movie_data.STAGES:
        ours[stage] = movie_data.run_child(stage, lake)
        print(f"  {stage:<24}{fmt(ours[stage])}" + (
            f"  {ours[stage]['rows']:>13,} rows" if "rows" in ours[stage] else ""), flush=True)
    wall = time.perf_counter() - wall
    if not args.no_duckdb:
        for stage in movie_data.STAGES:
            floor[stage] = duckdb_child(stage, lake, inputs_file)
            print(f"  duckdb {stage:<17}{fmt(floor[stage])}", flush=True)

    print(f"\n{'stage':<24}{'ours':>22}{'duckdb read+write':>24}{'ours/duckdb':>13}")
    for stage in movie_data.STAGES:
        o, d = ours[stage], floor.get(stage, {})
        ratio = (f"{o['seconds'] / d['seconds']:>12.2f}x" if "seconds" in o and "seconds" in d
                 else f"{'-':>13}")
        print(f"{stage:<24}{fmt(o):>22}{fmt(d) if d else '-':>24}{ratio}")
    gold = ours.get("gold", {})
    if "models" in gold:
        print("\ngold: dbt build "
              f"{gold['dbt_seconds']:.1f} s (dbt's process peak RSS "
              f"{gold['children_peak_rss_mib'] / 1024:.2f} GiB), landing as Delta "
              f"{gold['land_seconds']:.1f} s; per model (run_results.json, seconds):")
        models = {k.split(".")[-1]: v for k, v in gold["models"].items() if k.startswith("model.")}
        for name, seconds in sorted(models.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<40}{seconds:>8.1f}")
        tests = [v for k, v in gold["models"].items() if k.startswith("test.")]
        print(f"  {f'{len(tests)} dbt tests together':<40}{sum(tests):>8.1f}")
    ok = [r for r in ours.values() if "seconds" in r]
    peak = max([r["peak_rss_mib"] for r in ok]
               + [gold.get("children_peak_rss_mib", 0)]) / 1024
    print(f"\nend to end (raw -> silver -> gold): {wall:.0f} s wall "
          f"(target < {TARGET_SECONDS} s: {'met' if wall < TARGET_SECONDS else 'MISSED'}; "
          f"moonshot {MOONSHOT_SECONDS} s: {'met' if wall < MOONSHOT_SECONDS else 'not met'}), "
          f"peak RSS {peak:.2f} GiB (target <= {TARGET_GIB} GiB: "
          f"{'met' if peak <= TARGET_GIB else 'MISSED'}); {len(ok)}/{len(ours)} stages succeeded")
    if floor:
        total = sum(r["seconds"] for r in floor.values() if "seconds" in r)
        print(f"DuckDB doing the same reads and writes: {total:.0f} s together")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if len(ok) == len(ours) else 1


if __name__ == "__main__":
    sys.exit(main())
