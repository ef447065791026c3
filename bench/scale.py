"""Benchmark: does the movie pipeline stay linear in time and flat in memory as the input grows?

Generates the real sources' formats (the seven IMDB gzip TSVs, the MovieLens ml-32m zip; see
``bench/movie_data.py``) at 1x, 2x and 4x a base size (a fraction of the real size), lands them
in a fresh lake per size and runs each stage with the very functions the Dagster assets call
(``build_imdb_table`` per IMDB dataset, ``build_movielens_tables``, ``dbt build`` of the movie
models and their landing as Delta), each stage in a fresh process so its peak RSS is its own.

The sizes are landed first, then each stage runs at 1x, 2x and 4x back to back (a shared
machine's load drifts less within a stage's three runs than over the whole bench). Prints
seconds, CPU seconds and peak RSS per stage and size, and the ratios 2x/1x and 4x/1x (time,
CPU, memory). Targets: 4x the input in at most 4.4x the time, at most 1.25x the memory.

When ``bench/telegram_etl.py`` or ``bench/tweets.py`` define ``run(n)`` (``n`` records), they
are measured the same way at 1x, 2x, 4x their base count (``--telegram``, ``--tweets``).

Usage: python bench/scale.py [--base 0.05] [--sizes 1 2 4] [--no-gold] [--stages STAGE ...]
[--keep] [--cache DIR]. Generated inputs are cached in ``data/bench/movies/<fraction>/`` (reused
by the next run); ``--keep`` keeps each size's lake in ``run-<fraction>/`` and reuses it, so
``--stages gold --keep`` measures the gold stage again without rebuilding silver.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import movie_data  # noqa: E402

PROJECT = Path(__file__).resolve().parent.parent
TIME_TARGET, MEMORY_TARGET = 4.4, 1.25


SILVER_BUILT = "silver-built"  # in a kept lake: every silver stage succeeded on it


def land_size(cache: Path, fraction: float, reuse: bool = False) -> Path:
    """A fresh lake holding ``fraction`` x the real sources, landed as raw (the inputs are
    generated once and cached); returns the lake's root. ``reuse``: a lake kept by an earlier
    ``--keep`` run whose silver stages all succeeded is returned as it is."""
    work = cache / f"run-{fraction:g}"
    if reuse and (work / SILVER_BUILT).exists():
        return work / "lake"
    inputs = movie_data.generate_in_child(cache / f"{fraction:g}", fraction)
    shutil.rmtree(work, ignore_errors=True)
    lake = work / "lake"
    movie_data.land(lake, inputs)
    movie_data.empty_tmdb_silver(lake)
    return lake


def movie_sizes(cache: Path, base: float, sizes: list[int], stages: list[str],
                keep: bool = False) -> dict[int, dict[str, dict]]:
    """Every stage at every size, one stage at a time across the sizes (1x, 2x, 4x of a stage
    run back to back, so a change in the machine's load between stages does not fall between
    the sizes of one ratio). Gold reads silver: when it is measured alone, the silver stages
    run first unmeasured (or not at all on a lake kept by ``keep``)."""
    lakes = {k: land_size(cache, base * k, reuse=keep) for k in sizes}
    silver = [s for s in movie_data.STAGES if s != "gold"]
    if "gold" in stages:
        for k in sizes:
            if (lakes[k].parent / SILVER_BUILT).exists():
                continue
            for stage in (s for s in silver if s not in stages):
                r = movie_data.run_child(stage, lakes[k])
                if "error" in r:
                    raise RuntimeError(f"{stage} at {base * k:g}x failed: {r['error']}")
    os.sync()
    results: dict[int, dict[str, dict]] = {k: {} for k in sizes}
    for stage in movie_data.STAGES:
        if stage not in stages:
            continue
        for k in sizes:
            results[k][stage] = r = movie_data.run_child(stage, lakes[k])
            print(f"  {base * k:g}x real size, {stage}: " + (
                f"{r['seconds']:.2f} s ({r['cpu_seconds']:.2f} s CPU), "
                f"{r['peak_rss_mib']:,.0f} MiB, {r['rows']:,} rows out"
                if "seconds" in r else f"failed: {r['error']}"), flush=True)
            if "models" in r:
                slowest = sorted(((v, k.split(".")[-1]) for k, v in r["models"].items()
                                  if k.startswith("model.")), reverse=True)[:4]
                print(f"    dbt build {r['dbt_seconds']:.1f} s (dbt's peak RSS "
                      f"{r['children_peak_rss_mib']:,.0f} MiB), landing as Delta "
                      f"{r['land_seconds']:.1f} s; slowest models: "
                      + ", ".join(f"{name} {v:.1f} s" for v, name in slowest), flush=True)
    for k in sizes:
        if not keep:
            shutil.rmtree(lakes[k].parent, ignore_errors=True)
        elif all("error" not in results[k].get(s, {}) for s in silver):
            (lakes[k].parent / SILVER_BUILT).touch()
    return results


def other_bench(name: str, n: int) -> dict:
    """``bench/<name>.py``'s ``lakehouse`` method on ``n`` records (its ``run(n, methods=...)``,
    which runs each method in a process of its own): that process's seconds, CPU seconds and
    peak RSS, not the generator's or this one's."""
    code = (f"import sys, json; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import {name} as b; r = b.run({n}, methods=('lakehouse',)); "
            "print(json.dumps(r['results']['lakehouse']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result if "seconds" in result else {"error": result.get("error", "no figures")}


def has_run(name: str) -> str | None:
    """Why ``bench/<name>.py`` cannot be measured here, or None."""
    try:
        module = importlib.import_module(name)
    except Exception as exc:  # its own imports failing is a reason to skip it, not to stop
        return f"cannot import bench/{name}.py ({exc})"
    run = getattr(module, "run", None)
    if not callable(run):
        return f"bench/{name}.py has no run(n)"
    parameters = list(inspect.signature(run).parameters.values())
    required = [p for p in parameters[1:] if p.default is inspect.Parameter.empty]
    if not parameters or required or "methods" not in {p.name for p in parameters}:
        return f"bench/{name}.py's run is not run(count, ..., methods=...)"
    return None


def ratio_lines(label: str, by_size: dict[int, dict]) -> list[str]:
    base = by_size.get(1)
    lines = []
    for k, r in by_size.items():
        if k == 1 or not base or "seconds" not in r or "seconds" not in base:
            continue
        t, m = r["seconds"] / base["seconds"], r["peak_rss_mib"] / base["peak_rss_mib"]
        # CPU seconds move less with the machine's load than wall time: shown beside it.
        cpu = (f", CPU {r['cpu_seconds'] / base['cpu_seconds']:5.2f}x"
               if r.get("cpu_seconds") and base.get("cpu_seconds") else "")
        verdict = ""
        if k == 4:
            verdict = (f"  time {'met' if t <= TIME_TARGET else 'MISSED'} (<= {TIME_TARGET}x), "
                       f"memory {'met' if m <= MEMORY_TARGET else 'MISSED'} "
                       f"(<= {MEMORY_TARGET}x)")
        lines.append(f"  {label:<26}{k}x/1x: time {t:5.2f}x{cpu}, peak RSS {m:5.2f}x{verdict}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=float, default=0.05,
                        help="1x as a fraction of the real sources' size (default 0.05)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--no-gold", action="store_true", help="silver stages only")
    parser.add_argument("--stages", nargs="+", choices=movie_data.STAGES, metavar="STAGE",
                        default=list(movie_data.STAGES),
                        help="the stages measured (default all; gold alone runs silver first, "
                             "unmeasured): e.g. --stages gold")
    parser.add_argument("--keep", action="store_true",
                        help="keep each size's lake (run-<fraction>/ in the cache) and reuse a "
                             "kept one whose silver stages succeeded")
    parser.add_argument("--cache", type=Path, default=PROJECT / "data" / "bench" / "movies")
    parser.add_argument("--telegram", type=int, default=250_000,
                        help="1x updates for bench/telegram_etl.py's run(n), 0 to skip")
    parser.add_argument("--tweets", type=int, default=100_000,
                        help="1x tweets for bench/tweets.py's run(n), 0 to skip")
    args = parser.parse_args()
    # The dbt parse of the gold stage needs the project's manifest; the stages read the lake.
    print(f"bench/scale.py on {os.cpu_count()} cores, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; 1x = {args.base:g} of the real "
          "sources", flush=True)
    stages = [s for s in args.stages if not (args.no_gold and s == "gold")]
    movies = movie_sizes(args.cache, args.base, args.sizes, stages, keep=args.keep)
    others: dict[str, dict[int, dict]] = {}
    for name, base in (("telegram_etl", args.telegram), ("tweets", args.tweets)):
        if not base:
            continue
        reason = has_run(name)
        if reason:
            print(f"  {name}: skipped: {reason}")
            continue
        others[name] = {k: other_bench(name, base * k) for k in args.sizes}

    print(f"\n{'stage':<26}" + "".join(f"{f'{k}x s':>10}{f'{k}x MiB':>10}" for k in args.sizes))
    stages = list(next(iter(movies.values())))
    for stage in stages:
        cells = ""
        for k in args.sizes:
            r = movies[k][stage]
            cells += (f"{r['seconds']:>10.2f}{r['peak_rss_mib']:>10,.0f}" if "seconds" in r
                      else f"{'failed':>20}")
        print(f"{stage:<26}{cells}")
    totals = {}
    for k in args.sizes:
        ok = [r for r in movies[k].values() if "seconds" in r]
        totals[k] = {"seconds": sum(r["seconds"] for r in ok),
                     "cpu_seconds": sum(r.get("cpu_seconds", 0.0) for r in ok),
                     "peak_rss_mib": max(r["peak_rss_mib"] for r in ok)}
    print(f"{'movies (sum, max)':<26}" + "".join(
        f"{totals[k]['seconds']:>10.2f}{totals[k]['peak_rss_mib']:>10,.0f}" for k in args.sizes))
    print("\nratios (each size's stages in fresh processes; the targets apply to 4x/1x):")
    for stage in stages:
        for line in ratio_lines(stage, {k: movies[k][stage] for k in args.sizes}):
            print(line)
    for line in ratio_lines("movies (sum, max)", totals):
        print(line)
    for name, by_size in others.items():
        for k, r in by_size.items():
            print(f"  {name} {k}x: " + (f"{r['seconds']:.2f} s, {r['peak_rss_mib']:,.0f} MiB"
                                        if "seconds" in r else f"failed: {r['error']}"))
        for line in ratio_lines(name, by_size):
            print(line)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
