"""Benchmark: how much of a small run is Dagster and Python start-up, through the daemon's path.

A private instance (``deploy/dagster.yaml``: queued runs, the project's run launcher, SQLite)
and a real ``dagster-daemon``; the sample backends; nothing is launched by hand but one recent
search (``dagster job launch``, as the 5-minute schedule would). From there the daemon does what
it does all year: the raw-file sensor loads the landed page (``twitter_files_job``: a typical
5-minute Twitter batch into bronze and silver), the poll sensor peeks at the sample Telegram bot
and polls it (``telegram_poll_job``: lands the answers, with ``timeout=0`` so no long-poll wait
is counted, and loads them into bronze in the same run), the silver sensor rebuilds the touched
days, the CSV drop sensor loads the two CSV files dropped in the bench's own drop folder
(``movies_csv_drop_job``), and the gold automation sensor rebuilds the gold models that read
what changed. The bench
waits until no run has been queued or running for ``--quiet-seconds``.

The scenario runs twice, on a fresh instance and lake each time: with the project's launcher as
``deploy/dagster.yaml`` sets it (runs start in forks of a warm run worker) and with
``warm_worker: false`` (Dagster's default: a new process per run that loads the code again).
For every run, from the instance's event log: the queue wait (created to launched), the run
(launched to finished), the time inside its steps (the work), process start-up (launched to the
first step), the time between steps and the wind-down (last step to finished); the Dagster share
is everything outside the steps over the run. For the polls it prints what they landed and
loaded. It also times loading the code location in a fresh process.

Usage: python bench/overhead.py [--quiet-seconds 90] [--max-minutes 20] [--paths warm,default]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _timings(instance, run) -> dict[str, float]:  # Dagster types: imported late
    stamps: dict[str, list[float]] = {}
    for event in instance.all_logs(run.run_id):
        if event.dagster_event is not None:
            stamps.setdefault(event.dagster_event.event_type_value, []).append(event.timestamp)
    steps = [s for s in instance.get_run_step_stats(run.run_id) if s.start_time and s.end_time]
    record = instance.get_run_record_by_id(run.run_id)
    created = record.create_timestamp.timestamp()
    launched = stamps.get("PIPELINE_STARTING", [created])[0]
    finished = (stamps.get("PIPELINE_SUCCESS") or stamps.get("PIPELINE_FAILURE") or [0])[-1]
    first_step = min((s.start_time for s in steps), default=finished)
    last_step = max((s.end_time for s in steps), default=finished)
    work = sum(s.end_time - s.start_time for s in steps)
    return {"launched_at": launched, "wall": finished - created, "work": work,
            "queue": launched - created, "startup": first_step - launched,
            "between": max(0.0, (last_step - first_step) - work),
            "wind_down": finished - last_step}


def _poll_facts(instance, run) -> str:
    """What a poll run landed and loaded (its raw and bronze materializations' metadata)."""
    facts = {}
    for event in instance.all_logs(run.run_id, of_type=_materialization()):
        materialization = event.asset_materialization
        if materialization is None:
            continue
        name = "/".join(materialization.asset_key.path)
        metadata = materialization.metadata
        if name == "raw/telegram/getupdates":
            facts["landed"] = (f"{metadata['updates_landed'].value} updates in "
                               f"{metadata['files_landed'].value} answers")
        elif name == "bronze/telegram_updates" and "bronze_rows" in metadata:
            facts["bronze"] = (f"{metadata['bronze_rows'].value} rows loaded into bronze from "
                               f"{metadata['files'].value} files")
    return ", ".join(facts.values()) or "nothing landed"


def _materialization():
    import dagster as dg

    return dg.DagsterEventType.ASSET_MATERIALIZATION


def _code_location_load_seconds(env: dict[str, str], repeat: int) -> list[float]:
    code = ("import time; t = time.perf_counter(); from lakehouse.definitions import defs; "
            "defs().get_repository_def().get_all_jobs(); print(time.perf_counter() - t)")
    return [float(subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True,
                                 capture_output=True, text=True).stdout.strip().splitlines()[-1])
            for _ in range(repeat)]


def _wait_until_quiet(instance, quiet_seconds: float, max_minutes: float) -> None:
    import dagster as dg

    active = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
              dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
    deadline = time.monotonic() + max_minutes * 60
    quiet_since = None
    while time.monotonic() < deadline:
        busy = instance.get_runs(dg.RunsFilter(statuses=active), limit=1)
        done = instance.get_runs_count()
        if busy or done == 0:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_seconds:
            return
        time.sleep(2)
    print(f"still busy after {max_minutes} minutes: reporting the runs finished so far")


def _one_path(warm: bool, args: argparse.Namespace) -> dict[str, list[dict[str, float]]]:
    """The whole daemon scenario on a fresh instance and lake; ``warm``: the project's launcher
    as deploy/dagster.yaml configures it, else the same with ``warm_worker: false`` (Dagster's
    own path: a new process per run)."""
    import dagster as dg

    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp_name:
        tmp = Path(tmp_name)
        home = tmp / "dagster_home"
        home.mkdir()
        config = (REPO / "deploy/dagster.yaml").read_text()
        if not warm:
            config = config.replace("  class: LocalRunLauncher\n",
                                    "  class: LocalRunLauncher\n  config:\n    warm_worker: false\n")
        (home / "dagster.yaml").write_text(config)
        env = {**os.environ, "DAGSTER_HOME": str(home), "LAKEHOUSE_ROOT": str(tmp / "lake"),
               "LAKEHOUSE_DUCKDB_PATH": str(tmp / "gold.duckdb"),
               "LAKEHOUSE_DOWNLOAD_DIR": str(tmp / "downloads"),
               "LAKEHOUSE_DROP_DIR": str(tmp / "drop"),
               "DAGSTER_TELEMETRY_DISABLED": "1",
               "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
        for secret in ("TELEGRAM_BOT_TOKEN", "TWITTER_BEARER_TOKEN", "TMDB_API_KEY"):
            env.pop(secret, None)  # the sample backends
        os.environ.update({k: env[k] for k in ("DAGSTER_HOME", "LAKEHOUSE_ROOT")})

        # Two CSV files dropped in the bench's own drop folder (the sample drop), for the drop
        # sensor to find: the checkout's data/drop is never read.
        from lakehouse.sources.csv_drop import write_sample_drop

        write_sample_drop(tmp / "drop")
        # storage created before the daemon opens it
        with dg.DagsterInstance.from_config(str(home)) as instance:
            before = os.times()
            daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
                                      cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
            try:
                subprocess.run([str(BIN / "dagster"), "job", "launch", "-w", "workspace.yaml",
                                "-j", "twitter_search_job"], cwd=REPO, env=env, check=True,
                               capture_output=True)
                _wait_until_quiet(instance, args.quiet_seconds, args.max_minutes)
            finally:
                daemon.terminate()
                daemon.wait(timeout=60)
            after = os.times()
            # The daemon reaps its code server and the run worker, which reaps its runs: their
            # CPU is the daemon's children's, counted here once the daemon is waited for.
            cpu = (after.children_user - before.children_user
                   + after.children_system - before.children_system)
            by_job: dict[str, list[dict[str, float]]] = {}
            failed, polls, first = [], [], None
            runs = [(run, _timings(instance, run)) for run in instance.get_runs()
                    if run.status == dg.DagsterRunStatus.SUCCESS]
            launches = [t["launched_at"] for _r, t in runs]
            if warm and runs:
                # The first run launched starts the warm worker, which loads the code location
                # once: shown apart, not in its job's medians.
                run, timing = min(runs, key=lambda r: r[1]["launched_at"])
                runs.remove((run, timing))
                first = f"{run.job_name}: start-up {timing['startup']:.2f} s"
            for run, timing in sorted(runs, key=lambda r: r[1]["launched_at"]):
                by_job.setdefault(run.job_name, []).append(timing)
                if run.job_name == "telegram_poll_job":
                    # A launch within SPARE_DELAY_SECONDS of the one before finds no spare run
                    # process ready (lakehouse/run_worker.py): the worker forks for it.
                    after = timing["launched_at"] - max(
                        (t for t in launches if t < timing["launched_at"]), default=float("-inf"))
                    polls.append(f"{_poll_facts(instance, run)}; start-up "
                                 f"{timing['startup']:.2f} s, launched {after:.1f} s after the "
                                 f"launch before it")
            failed = [f"{run.job_name}: {run.status.value}" for run in instance.get_runs()
                      if run.status != dg.DagsterRunStatus.SUCCESS]
    _print("warm run worker (deploy/dagster.yaml)" if warm else
           "Dagster's default path (warm_worker: false)", by_job, failed)
    runs = sum(len(t) for t in by_job.values()) + (1 if first else 0)
    print(f"CPU of the processes started (the daemon, its code server, the run worker, the runs, "
          f"the launch command): {cpu:.1f} s for "
          f"{runs} runs; load average at the end: {os.getloadavg()[0]:.2f} (1 min)")
    if first:
        print(f"first run, which started the warm worker (the one code location load): {first}")
    for number, facts in enumerate(polls, 1):
        print(f"telegram_poll_job run {number}: {facts}")
    return by_job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quiet-seconds", type=float, default=90,
                        help="no run queued or running for this long ends the bench")
    parser.add_argument("--max-minutes", type=float, default=20)
    parser.add_argument("--paths", default="warm,default",
                        help="launch paths to measure, in this order: warm, default or both")
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores", flush=True)
    env = {**os.environ, "DAGSTER_TELEMETRY_DISABLED": "1"}
    loads = _code_location_load_seconds(env, 3)
    print(f"code location load (fresh process): median {statistics.median(loads):.2f} s "
          f"of {', '.join(f'{s:.2f}' for s in loads)}", flush=True)
    results = {path: _one_path(path == "warm", args) for path in args.paths.split(",")}
    if {"warm", "default"} <= results.keys():
        print("\nstart-up per run, warm worker / default path (medians):")
        for job in sorted(results["warm"].keys() & results["default"].keys()):
            warm = statistics.median(t["startup"] for t in results["warm"][job])
            cold = statistics.median(t["startup"] for t in results["default"][job])
            print(f"  {job:<26}{warm:>6.2f} s / {cold:>6.2f} s = {warm / cold if cold else 0:.2f}")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (1 min)")


def _print(title: str, by_job: dict[str, list[dict[str, float]]], failed: list[str]) -> None:
    print(f"\n{title}")
    print(f"{'job':<26}{'runs':>5}{'queue s':>9}{'run s':>7}{'work s':>8}{'start-up s':>11}"
          f"{'between s':>10}{'wind-down s':>12}{'Dagster share':>14}")
    for job, timings in sorted(by_job.items()):
        for t in timings:
            t["run"] = t["wall"] - t["queue"]
            t["share"] = (t["run"] - t["work"]) / t["run"] if t["run"] else 0.0
        med = {k: statistics.median(t[k] for t in timings) for k in timings[0]}
        print(f"{job:<26}{len(timings):>5}{med['queue']:>9.2f}{med['run']:>7.2f}{med['work']:>8.2f}"
              f"{med['startup']:>11.2f}{med['between']:>10.2f}{med['wind_down']:>12.2f}"
              f"{med['share']:>14.0%}")
    if failed:
        print(f"runs not successful: {', '.join(failed)}")
    print("medians per job; run = launched to finished (the queue wait before it is the "
          "concurrency limit and the daemon's 1 s poll); Dagster share = the run outside its "
          "steps (start-up, between steps, wind-down) / run, the median of the runs' shares; "
          "target <= 20%", flush=True)


if __name__ == "__main__":
    main()
