"""Benchmark: how much of a small run is Dagster and Python start-up, through the daemon's path.

A private instance (SQLite, the default run launcher) where each run is submitted with
``dagster job launch``: the run launcher starts the run's own process, as it does when the
daemon dequeues a run (the queue's wait is left out: it depends on what else is running, and the
daemon's sensors would start runs of their own here). The runs, on the sample backends:

- ``twitter_search_job``: one recent-search poll (a page of tweets landed raw);
- ``twitter_files_job``: that raw file into bronze, quarantine and silver (a typical 5-minute
  Twitter batch);
- ``telegram_poll_job``: one getUpdates poll (a day of the sample group chat);
- ``telegram_bronze_job``: that poll's raw files into bronze.

From each run's event log: wall time (created to finished), the time inside its steps (the
work), and the rest split into launch (created to launched), process start-up (launched to the
first step) and wind-down. It also times loading the code location in a fresh process.

Usage: python bench/overhead.py [--repeat 3]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TIMEOUT_S = 600


def _dagster(*args: str, env: dict[str, str]) -> None:
    proc = subprocess.run([str(BIN / "dagster"), *args], cwd=REPO, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"dagster {' '.join(args)} failed: {proc.stderr[-2000:]}")


def _launch(job: str, config: dict, env: dict[str, str], tmp: Path) -> str:
    import dagster as dg

    instance = dg.DagsterInstance.get()
    before = {r.run_id for r in instance.get_runs(dg.RunsFilter(job_name=job))}
    config_path = tmp / f"{job}.json"
    config_path.write_text(json.dumps(config))
    _dagster("job", "launch", "-w", "workspace.yaml", "-j", job, "-c", str(config_path), env=env)
    new = [r for r in instance.get_runs(dg.RunsFilter(job_name=job)) if r.run_id not in before]
    if len(new) != 1:
        raise RuntimeError(f"expected one new {job} run, found {len(new)}")
    return new[0].run_id


def _wait(run_id: str) -> dict[str, float]:
    import dagster as dg

    instance = dg.DagsterInstance.get()
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        run = instance.get_run_by_id(run_id)
        assert run is not None
        if run.is_finished:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} did not finish within {TIMEOUT_S} s")
        time.sleep(0.5)
    if run.status != dg.DagsterRunStatus.SUCCESS:
        raise RuntimeError(f"run {run_id} of {run.job_name} ended {run.status.value}")
    events = instance.all_logs(run_id)
    stamps: dict[str, list[float]] = {}
    for event in events:
        if event.dagster_event is not None:
            stamps.setdefault(event.dagster_event.event_type_value, []).append(event.timestamp)
    steps = instance.get_run_step_stats(run_id)
    work = sum((s.end_time or 0) - (s.start_time or 0) for s in steps)
    record = instance.get_run_record_by_id(run_id)
    assert record is not None
    created = record.create_timestamp.timestamp()
    launched = stamps["PIPELINE_STARTING"][0]
    first_step = min(s.start_time for s in steps if s.start_time)
    last_step = max(s.end_time for s in steps if s.end_time)
    finished = stamps["PIPELINE_SUCCESS"][-1]
    return {"wall": finished - created, "work": work, "launch": launched - created,
            "startup": first_step - launched, "wind_down": finished - last_step}


def _code_location_load_seconds(env: dict[str, str], repeat: int) -> list[float]:
    code = ("import time; t = time.perf_counter(); from lakehouse.definitions import defs; "
            "defs().get_repository_def().get_all_jobs(); print(time.perf_counter() - t)")
    return [float(subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True,
                                 capture_output=True, text=True).stdout.strip().splitlines()[-1])
            for _ in range(repeat)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each job")
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp_name:
        tmp = Path(tmp_name)
        home = tmp / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = {**os.environ, "DAGSTER_HOME": str(home), "LAKEHOUSE_ROOT": str(tmp / "lake"),
               "LAKEHOUSE_DUCKDB_PATH": str(tmp / "gold.duckdb"),
               "DAGSTER_TELEMETRY_DISABLED": "1", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
        for secret in ("TELEGRAM_BOT_TOKEN", "TWITTER_BEARER_TOKEN"):
            env.pop(secret, None)  # the sample backends
        os.environ.update({k: env[k] for k in ("DAGSTER_HOME", "LAKEHOUSE_ROOT")})

        loads = _code_location_load_seconds(env, args.repeat)
        print(f"code location load (fresh process): median {statistics.median(loads):.2f} s "
              f"of {', '.join(f'{s:.2f}' for s in loads)}", flush=True)

        results = _measure(env, tmp, args.repeat)
    _print(results)


def _measure(env: dict[str, str], tmp: Path, repeat: int) -> dict[str, list[dict[str, float]]]:
    from lakehouse.lake.location import Lake
    from lakehouse.sources.telegram_landing import GETUPDATES_PREFIX
    from lakehouse.sources.twitter import RAW_PREFIXES as TWITTER_PREFIXES

    lake = Lake.from_env(env["LAKEHOUSE_ROOT"])
    results: dict[str, list[dict[str, float]]] = {}

    def run(job: str, config: dict) -> None:
        timing = _wait(_launch(job, config, env, tmp))
        results.setdefault(job, []).append(timing)
        print(f"  {job}: wall {timing['wall']:.2f} s, work {timing['work']:.2f} s", flush=True)

    for _ in range(repeat):
        seen = set(lake.list_keys("raw/twitter"))
        run("twitter_search_job", {})
        new = sorted(k for p in TWITTER_PREFIXES for k in lake.list_keys(p) if k not in seen)
        files = {"config": {"files": new}}
        run("twitter_files_job", {"ops": {"twitter_bronze": files, "twitter_silver": files}})

        seen = set(lake.list_keys(GETUPDATES_PREFIX))
        run("telegram_poll_job", {"resources": {"telegram": {"config": {"sample_days": 1}}}})
        new = sorted(k for k in lake.list_keys(GETUPDATES_PREFIX) if k not in seen)
        run("telegram_bronze_job", {"ops": {"telegram_bronze": {"config": {"files": new}}}})
    return results


def _print(results: dict[str, list[dict[str, float]]]) -> None:
    print(f"{'job':<22}{'wall s':>8}{'work s':>8}{'launch s':>9}{'start-up s':>11}"
          f"{'wind-down s':>12}{'overhead':>10}")
    shares = []
    for job, timings in results.items():
        med = {k: statistics.median(t[k] for t in timings) for k in timings[0]}
        share = 1 - med["work"] / med["wall"]
        shares.append(share)
        print(f"{job:<22}{med['wall']:>8.2f}{med['work']:>8.2f}{med['launch']:>9.2f}"
              f"{med['startup']:>11.2f}{med['wind_down']:>12.2f}{share:>9.0%}")
    print("medians over the repeats; overhead = share of the wall time (created to finished) "
          "spent outside the steps (launch, process and code-location start-up, wind-down); "
          "target <= 20%")


if __name__ == "__main__":
    main()
