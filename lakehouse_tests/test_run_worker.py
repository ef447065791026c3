"""Runs launched by the daemon start in forks of a warm run worker (``lakehouse.run_worker``),
with the instance configured as `make dev` configures it (deploy/dagster.yaml): one worker serves
run after run, new code gets a new worker, and a run in a fork can be terminated or killed like
any other run (canceled; marked failed by run monitoring)."""

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import psutil

from lakehouse.run_launcher import WORKER_PID_TAG

ROOT = Path(__file__).parents[1]
DEFS = textwrap.dedent("""
    import os
    import time

    import dagster as dg

    @dg.asset
    def quick() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"pid": os.getpid(), "parent": os.getppid()})

    @dg.asset
    def slow() -> None:
        time.sleep(300)

    defs = dg.Definitions(assets=[quick, slow], executor=dg.in_process_executor,
                          jobs=[dg.define_asset_job("quick_job", ["quick"]),
                                dg.define_asset_job("slow_job", ["slow"])])
""")
BIN = Path(sys.executable).parent


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _finished(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRun | None:
    run = instance.get_run_by_id(run_id)
    return run if run is not None and run.is_finished else None


def test_runs_start_in_forks_of_one_warm_worker_which_reloads_new_code(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    defs_file = tmp_path / "warm_defs.py"
    defs_file.write_text(DEFS)
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(ROOT),
           "DAGSTER_TELEMETRY_DISABLED": "1"}
    instance = dg.DagsterInstance.from_config(str(home))  # its storage, before the daemon's
    log = open(tmp_path / "daemon.log", "wb")  # noqa: SIM115 - closed in finally
    daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-f", str(defs_file)],
                              env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)

    def submit(job: str) -> str:
        before = {r.run_id for r in instance.get_runs()}
        subprocess.run([str(BIN / "dagster"), "job", "launch", "-f", str(defs_file), "-j", job],
                       env=env, cwd=tmp_path, check=True, capture_output=True)
        return next(r.run_id for r in instance.get_runs() if r.run_id not in before)

    def quick_run_facts(run_id: str) -> dict[str, int]:
        run = _wait_for(lambda: _finished(instance, run_id), 180, f"run {run_id}")
        assert run.status == dg.DagsterRunStatus.SUCCESS, (tmp_path / "daemon.log").read_text()[-3000:]
        event = instance.get_latest_materialization_event(dg.AssetKey("quick"))
        metadata = event.asset_materialization.metadata
        assert int(run.tags[WORKER_PID_TAG]) == metadata["pid"].value
        return {"pid": metadata["pid"].value, "worker": metadata["parent"].value}

    try:
        with instance:
            first = quick_run_facts(submit("quick_job"))
            second = quick_run_facts(submit("quick_job"))
            # One warm worker forked both runs: not the daemon, not a process per run.
            assert first["worker"] == second["worker"] != daemon.pid
            assert first["pid"] != second["pid"]
            worker = psutil.Process(first["worker"])
            assert "lakehouse.run_worker" in " ".join(worker.cmdline())

            # New code: the worker answers stale, a fresh one loads it and runs it.
            defs_file.write_text(DEFS + "\n# edited\n")
            third = quick_run_facts(submit("quick_job"))
            assert third["worker"] != first["worker"]
            assert not psutil.pid_exists(first["worker"]) or \
                psutil.Process(first["worker"]).status() == psutil.STATUS_ZOMBIE

            # A run in a fork is terminated as Dagster terminates runs: CANCELED.
            canceled = submit("slow_job")
            _wait_for(lambda: instance.get_run_by_id(canceled).status == dg.DagsterRunStatus.STARTED,
                      120, "the slow run to start")
            assert instance.run_launcher.terminate(canceled)
            run = _wait_for(lambda: _finished(instance, canceled), 60, "the run to be canceled")
            assert run.status == dg.DagsterRunStatus.CANCELED

            # A fork that dies is seen by run monitoring: FAILED, its slot freed.
            killed = submit("slow_job")
            run = _wait_for(lambda: (r := instance.get_run_by_id(killed)).status
                            == dg.DagsterRunStatus.STARTED and r, 120, "the slow run to start")
            _wait_for(lambda: instance.all_logs(killed, of_type=dg.DagsterEventType.STEP_START),
                      60, "the step to start")
            # its own session (setsid): the group is the run and its compute-log tailers
            os.killpg(int(instance.get_run_by_id(killed).tags[WORKER_PID_TAG]), signal.SIGKILL)
            run = _wait_for(lambda: _finished(instance, killed), 120, "run monitoring")
            assert run.status == dg.DagsterRunStatus.FAILURE
            assert any("is gone" in (e.message or "") for e in instance.all_logs(killed))
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
        log.close()
