"""The local instance's run launcher: runs start in a warm run worker (``lakehouse.run_worker``)
that forks a child per run, falling back to Dagster's default path (a fresh process from the code
server), plus a health check of run workers for run monitoring.

Why a warm worker: Dagster's ``DefaultRunLauncher`` starts every run in a new Python process that
imports Dagster and the project and builds the Definitions again, about 4 s on a quiet 2-core
machine, for runs whose work is often a second (a 5-minute Twitter batch) or less (a Telegram
poll). The worker pays that once per code version; ``bench/overhead.py`` measures both paths.

Why its own compute logs (``LocalComputeLogs``): Dagster's ``LocalComputeLogManager`` mirrors
a run's captured stdout and stderr to the terminal live through a ``tail -F`` and a Python
watcher process per stream, four processes a run that cost a small run about a tenth of its
wall time on 2 cores (their start before the first step, their stop after the last). The same
files, read the same way by the UI, are written here without them.

Why the health check: ``DefaultRunLauncher`` cannot tell whether a run's process is alive, so a
run whose worker was killed (OOM killer, SIGKILL) stays STARTED forever and holds one of the few
queue slots. On one machine the answer is cheap: the run worker is the process that wrote the
run's RUN_START event, and its pid and start time tell whether it is still there. Production
launchers (ECS, Kubernetes) have their own check.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from hashlib import sha256
from pathlib import Path
from typing import IO, Any

import psutil
from dagster import DagsterEventType, DagsterRun, Field, Float, StringSource
from dagster._core.execution.compute_logs import redirect_to_file
from dagster._core.instance.ref import compute_logs_directory
from dagster._core.launcher import DefaultRunLauncher
from dagster._core.launcher.base import CheckRunHealthResult, LaunchRunContext, WorkerStatus
from dagster._core.storage.compute_log_manager import CapturedLogContext
from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager
from dagster._serdes import serialize_value
from dagster._utils import ensure_file, touch_file

from lakehouse.run_worker import cache_alembic_scripts, keep_launcher_connections

# A worker started more than this after its RUN_START event is another process with a reused pid.
PID_REUSE_SLACK_SECONDS = 5.0
# Loading the code location takes ~4 s quiet and several times that on a busy machine.
WORKER_START_TIMEOUT_SECONDS = 180.0
# A worker that failed to start is not tried again before this (runs take the default path).
WORKER_RETRY_SECONDS = 600.0


# How the engine event of a run that did not start in a warm worker begins.
FELL_BACK = "Warm run worker unavailable"


def run_process_start(instance: Any, run_id: str) -> tuple[int, float] | None:
    """The pid of the process executing the run, and when it said so: its first event, the
    engine's "Started process for run (pid: N)" (``EngineEventData.in_process``), which both a
    warm worker's fork and Dagster's own run process store before anything else. None before it."""
    return _process_start(instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT))


def _process_start(engine_events: Sequence[Any]) -> tuple[int, float] | None:
    for event in engine_events:
        data = event.dagster_event.engine_event_data if event.dagster_event else None
        pid = data.metadata.get("pid") if data is not None else None
        if pid is not None:
            return int(pid.value), event.timestamp
    return None


class WarmWorkerUnavailable(Exception):
    pass


class WarmWorker:
    """One ``lakehouse.run_worker`` process for one code location origin."""

    def __init__(self, origin: Any, folder: Path) -> None:
        self._origin_json = serialize_value(origin)
        self._cwd = getattr(origin.code_pointer, "working_directory", None) or os.getcwd()
        self._executable = origin.executable_path
        key = sha256(self._origin_json.encode()).hexdigest()[:16]
        self.socket_path = str(folder / f"{key}.sock")
        self._process: subprocess.Popen | None = None
        self._failed_at = 0.0

    def _start(self, instance_ref_json: str) -> None:
        if time.monotonic() - self._failed_at < WORKER_RETRY_SECONDS and self._failed_at:
            raise WarmWorkerUnavailable("the run worker failed to start recently")
        Path(self.socket_path).unlink(missing_ok=True)
        self._process = subprocess.Popen(
            [self._executable, "-m", "lakehouse.run_worker", "--socket", self.socket_path,
             "--parent", str(os.getpid())],
            cwd=self._cwd, stdin=subprocess.PIPE, start_new_session=True)
        assert self._process.stdin is not None
        self._process.stdin.write(f"{self._origin_json}\n{instance_ref_json}\n".encode())
        self._process.stdin.close()
        deadline = time.monotonic() + WORKER_START_TIMEOUT_SECONDS
        while not os.path.exists(self.socket_path):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                self._failed_at = time.monotonic()
                raise WarmWorkerUnavailable("the run worker did not start (see the daemon's log)")
            time.sleep(0.05)

    def _ask(self, request: dict[str, str]) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(30)
            conn.connect(self.socket_path)
            conn.sendall(json.dumps(request).encode() + b"\n")
            return json.loads(conn.makefile("rb").readline() or b"{}")

    def launch(self, run_id: str, instance_ref_json: str) -> int:
        """Start the run in a fork of the worker; returns the run process's pid."""
        request = {"run_id": run_id, "instance_ref": instance_ref_json}
        for _attempt in range(2):  # a stale worker is replaced once
            if self._process is None or self._process.poll() is not None:
                self._start(instance_ref_json)
            try:
                reply = self._ask(request)
            except OSError as error:
                self.stop()
                raise WarmWorkerUnavailable(f"the run worker did not answer: {error}") from error
            if "pid" in reply:
                return int(reply["pid"])
            if not reply.get("stale"):
                raise WarmWorkerUnavailable(f"the run worker refused: {reply.get('error')}")
            self.stop()  # the code changed since it loaded: a fresh worker loads the new code
        raise WarmWorkerUnavailable("the run worker stayed stale")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()  # runs in flight are in their own sessions and go on
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process = None
        Path(self.socket_path).unlink(missing_ok=True)


class LocalRunLauncher(DefaultRunLauncher):
    """Runs in forks of a warm worker (``warm_worker: false`` for Dagster's default path), with
    run workers that run monitoring can check (same machine only)."""

    def __init__(self, inst_data: Any = None, warm_worker: bool = True) -> None:
        super().__init__(inst_data)
        # The process launching runs (the daemon, the webserver) checks the schema of each run's
        # event database it first writes to (the run's STARTING event) as the worker does: with
        # the migration scripts parsed once, not once per run (about 20 ms quiet).
        cache_alembic_scripts()
        self._warm = warm_worker
        self._workers: dict[str, WarmWorker] = {}
        self._lock = threading.Lock()
        self._folder: Path | None = None

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {"warm_worker": Field(bool, is_required=False, default_value=True,
                                     description="Start runs in forks of a warm run worker.")}

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: dict[str, Any]) -> "LocalRunLauncher":
        return cls(inst_data=inst_data, **config_value)

    def _worker(self, origin: Any) -> WarmWorker:
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="lakehouse-run-worker-"))
        key = serialize_value(origin)
        if key not in self._workers:
            self._workers[key] = WarmWorker(origin, self._folder)
        return self._workers[key]

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        origin = run.job_code_origin
        if not self._warm or origin is None:
            return super().launch_run(context)
        # From the next launch on, this process's part of it (storing STARTING, reading the run
        # back) runs on kept connections, as the run's process does.
        keep_launcher_connections(self._instance)
        try:
            with self._lock:
                self._worker(origin.repository_origin).launch(
                    run.run_id, serialize_value(self._instance.get_ref()))
        except WarmWorkerUnavailable as error:
            self._instance.report_engine_event(
                f"{FELL_BACK} ({error}); starting the run in a new process.",
                run, cls=self.__class__)
            return super().launch_run(context)
        self._run_ids.add(run.run_id)

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return False
        events = self._instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT)
        # A run that took Dagster's default path (its code server's) is Dagster's to terminate.
        fell_back = not self._warm or any(
            (event.message or "").startswith(FELL_BACK) for event in events)
        started = None if fell_back else _process_start(events)
        if started is None:
            return super().terminate(run_id)
        pid, since = started
        self._instance.report_run_canceling(run)
        if not _alive_since(pid, since):
            return False
        # What Dagster's code server does to a run it started: an interrupt, which the run turns
        # into its steps' interruption and a CANCELED run.
        os.kill(pid, signal.SIGINT)
        return True

    def dispose(self) -> None:
        for worker in self._workers.values():
            worker.stop()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
        super().dispose()

    def _run_start(self, run_id: str) -> Any:
        starts = self._instance.all_logs(run_id, of_type=DagsterEventType.RUN_START)
        return starts[-1] if starts else None

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        event = self._run_start(run.run_id)
        pid = event.dagster_event.pid if event and event.dagster_event else None
        if event is None or pid is None:
            # Nothing to check yet: never fail a run on missing information.
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no run worker recorded yet")
        if _alive_since(pid, event.timestamp):
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(pid))
        return CheckRunHealthResult(
            WorkerStatus.FAILED, f"run worker process {pid} is gone (killed or crashed)",
            run_worker_id=str(pid))


def _alive_since(pid: int, started_by: float | None) -> bool:
    """Whether ``pid`` is a live process that existed by ``started_by`` (plus some slack)."""
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and (
            started_by is None or process.create_time() <= started_by + PID_REUSE_SLACK_SECONDS)
    except psutil.NoSuchProcess:
        return False


class LocalComputeLogs(LocalComputeLogManager):
    """Dagster's local compute logs without helper processes: a run's stdout and stderr are
    redirected into the same files as ``LocalComputeLogManager``'s, at the file-descriptor level
    as it does (so a killed run's output is in them, and the UI reads them live), and what was
    captured is copied to the process's own streams when the capture ends, instead of live
    through a ``tail -F`` and a watcher process per stream. ``base_dir`` defaults to Dagster's
    own place for them, ``storage`` in the instance's folder (``$DAGSTER_HOME``)."""

    def __init__(self, base_dir: str | None = None, polling_timeout: float | None = None,
                 inst_data: Any = None) -> None:
        super().__init__(base_dir or "", polling_timeout=polling_timeout, inst_data=inst_data)
        self._in_instance_folder = base_dir is None

    def register_instance(self, instance: Any) -> None:
        super().register_instance(instance)
        if self._in_instance_folder:  # the instance's folder is known from here on
            self._base_dir = compute_logs_directory(instance.root_directory)

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {"base_dir": Field(StringSource, is_required=False),
                "polling_timeout": Field(Float, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: dict[str, Any]) -> "LocalComputeLogs":
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def capture_logs(self, log_key: Sequence[str]) -> Iterator[CapturedLogContext]:
        with ExitStack() as streams:
            for stream, extension in ((sys.stdout, "out"), (sys.stderr, "err")):
                streams.enter_context(_captured(stream, self.get_captured_local_path(
                    log_key, extension)))
            yield CapturedLogContext(log_key)
        # as Dagster's: the UI knows the capture is complete
        touch_file(self.complete_artifact_path(log_key))


@contextmanager
def _captured(stream: IO[str], path: str) -> Iterator[None]:
    ensure_file(path)
    start = os.path.getsize(path)
    try:
        with redirect_to_file(stream, path):
            yield
    finally:
        try:
            fileno = stream.fileno()
        except (AttributeError, OSError, ValueError):
            fileno = None  # a stream without a descriptor (a test runner's): nothing to copy to
        if fileno is not None:
            try:
                with open(path, "rb") as captured:
                    captured.seek(start)
                    while chunk := captured.read(1 << 20):
                        view = memoryview(chunk)
                        while view:
                            view = view[os.write(fileno, view):]
            except OSError:
                pass  # the terminal is gone: the copy is a courtesy, the file has it all
