"""A run whose process is SIGKILLed is marked FAILED by the daemon's run monitoring, with the
instance configured as `make dev` configures it (deploy/dagster.yaml)."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).parents[1]
SLOW_DEFS = textwrap.dedent("""
    import time
    import dagster as dg

    @dg.asset
    def slow_load() -> None:
        time.sleep(300)

    defs = dg.Definitions(assets=[slow_load])
""")


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_a_killed_run_is_marked_failed_and_frees_its_slot(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    defs_file = tmp_path / "slow_defs.py"
    defs_file.write_text(SLOW_DEFS)
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(ROOT),
           "DAGSTER_TELEMETRY_DISABLED": "1"}
    bin_dir = Path(sys.executable).parent
    run_log = open(tmp_path / "run.log", "wb")  # noqa: SIM115 - closed with the process
    run_proc = subprocess.Popen([str(bin_dir / "dagster"), "asset", "materialize", "-f",
                                 str(defs_file), "--select", "slow_load"], env=env,
                                cwd=tmp_path, stdout=run_log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    daemon = None
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            run = _wait_for(lambda: next(iter(instance.get_runs(filters=dg.RunsFilter(
                statuses=[dg.DagsterRunStatus.STARTED]))), None) or run_proc.poll() is not None,
                120, "the run to start")
            assert run_proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            run_proc.send_signal(signal.SIGKILL)
            run_proc.wait(timeout=10)
            assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED

            daemon = subprocess.Popen([str(bin_dir / "dagster-daemon"), "run", "-f",
                                       str(defs_file)], env=env, cwd=tmp_path,
                                      stdout=run_log, stderr=subprocess.STDOUT)
            _wait_for(lambda: instance.get_run_by_id(run.run_id).status
                      == dg.DagsterRunStatus.FAILURE or daemon.poll() is not None, 120,
                      "run monitoring")
            assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE, \
                (tmp_path / "run.log").read_text()[-3000:]
            messages = [e.message or "" for e in instance.all_logs(run.run_id)]
            assert any("is gone" in m for m in messages), messages[-5:]
            # The queue counts it no more: no run holds a slot.
            assert not instance.get_runs(filters=dg.RunsFilter(statuses=[
                dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING]))
    finally:
        _stop(run_proc)
        # The killed run leaves its compute-log tailers (`tail -F`) in its process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run_proc.pid, signal.SIGKILL)
        run_log.close()
        if daemon is not None:
            _stop(daemon)
