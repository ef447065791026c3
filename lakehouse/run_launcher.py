"""The local instance's run launcher: Dagster's default one, plus a health check of run workers,
so run monitoring (``deploy/dagster.yaml``) marks a run whose process died as failed.

Dagster's ``DefaultRunLauncher`` cannot tell whether a run's process is alive, so a run whose
worker was killed (OOM killer, SIGKILL, a closed laptop lid that never came back) stays STARTED
forever and holds one of the few queue slots. On one machine the answer is cheap: the run
worker is the process that wrote the run's RUN_START event (a launched run's subprocess, or the
`dagster asset materialize` process itself), and its pid and start time tell whether it is
still there. Production launchers (ECS, Kubernetes) have their own check.
"""

import psutil
from dagster import DagsterEventType, DagsterRun
from dagster._core.launcher import DefaultRunLauncher
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus

# A worker started more than this after its RUN_START event is another process with a reused pid.
PID_REUSE_SLACK_SECONDS = 5.0


class LocalRunLauncher(DefaultRunLauncher):
    """``DefaultRunLauncher`` whose run workers run monitoring can check (same machine only)."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        starts = self._instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_START)
        event = starts[-1] if starts else None
        pid = event.dagster_event.pid if event and event.dagster_event else None
        if event is None or pid is None:
            # Nothing to check yet: never fail a run on missing information.
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no run worker recorded yet")
        try:
            worker = psutil.Process(pid)
            alive = (worker.status() != psutil.STATUS_ZOMBIE
                     and worker.create_time() <= event.timestamp + PID_REUSE_SLACK_SECONDS)
        except psutil.NoSuchProcess:
            alive = False
        if alive:
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(pid))
        return CheckRunHealthResult(
            WorkerStatus.FAILED, f"run worker process {pid} is gone (killed or crashed)",
            run_worker_id=str(pid))
