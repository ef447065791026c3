"""How runs start and end with the instance configured as `make dev` configures it
(deploy/dagster.yaml): in forks of a warm run worker (``lakehouse.run_worker``), one worker
serving run after run and new code getting a new worker; a run whose process is SIGKILLed (a
fork or any other) is marked FAILED by the daemon's run monitoring, and a forked run is
terminated like any other (CANCELED)."""

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import dagster as dg
import psutil

from lakehouse.run_launcher import run_process_start

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent
SLOW_DEFS = textwrap.dedent("""
    import time
    import dagster as dg

    @dg.asset
    def slow_load() -> None:
        time.sleep(300)

    defs = dg.Definitions(assets=[slow_load])
""")

DEFS = textwrap.dedent("""
    import os
    import time

    import dagster as dg

    @dg.asset
    def quick() -> dg.MaterializeResult:
        print(f"quick ran in {os.getpid()}")
        return dg.MaterializeResult(metadata={"pid": os.getpid(), "parent": os.getppid()})

    @dg.asset
    def slow() -> None:
        time.sleep(300)

    defs = dg.Definitions(assets=[quick, slow], executor=dg.in_process_executor,
                          jobs=[dg.define_asset_job("quick_job", ["quick"]),
                                dg.define_asset_job("slow_job", ["slow"])])
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


def _dev_instance(tmp_path: Path, defs: str) -> tuple[Path, Path, dict[str, str]]:
    """A Dagster home configured as `make dev`'s (storage created), a definitions file and the
    processes' environment."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    defs_file = tmp_path / "defs.py"
    defs_file.write_text(defs)
    # The storage is created here, before processes race to create it (SQLite's migrations).
    dg.DagsterInstance.from_config(str(home)).dispose()
    return home, defs_file, {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(ROOT),
                             "DAGSTER_TELEMETRY_DISABLED": "1"}


@dg.op
def noop() -> None:
    pass


@dg.job
def small() -> None:
    """A run to store events for, in the tests that write a run's storage by hand."""
    noop()


def _finished(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRun | None:
    run = instance.get_run_by_id(run_id)
    return run if run is not None and run.is_finished else None


def test_a_killed_run_is_marked_failed_and_frees_its_slot(tmp_path: Path) -> None:
    home, defs_file, env = _dev_instance(tmp_path, SLOW_DEFS)
    run_log = open(tmp_path / "run.log", "wb")  # noqa: SIM115 - closed with the process
    run_proc = subprocess.Popen([str(BIN / "dagster"), "asset", "materialize", "-f",
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

            daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-f",
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


def test_runs_start_in_forks_of_one_warm_worker_which_reloads_new_code(tmp_path: Path) -> None:
    home, defs_file, env = _dev_instance(tmp_path, DEFS)
    instance = dg.DagsterInstance.from_config(str(home))
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
        assert run_process_start(instance, run_id)[0] == metadata["pid"].value
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
            # Its compute logs are where the UI reads them, complete, and what it printed also
            # reached the daemon's output (the terminal under `make dev`).
            run_id = next(r.run_id for r in instance.get_runs()
                          if (run_process_start(instance, r.run_id) or (0,))[0] == second["pid"])
            captured = instance.all_logs(run_id, of_type=dg.DagsterEventType.LOGS_CAPTURED)
            log_key = instance.compute_log_manager.build_log_key_for_run(
                run_id, captured[0].dagster_event.event_specific_data.file_key)
            logs = instance.compute_log_manager.get_log_data(log_key)
            assert instance.compute_log_manager.is_capture_complete(log_key)
            assert f"quick ran in {second['pid']}" in logs.stdout.decode()
            assert "STEP_SUCCESS" in logs.stderr.decode()
            log.flush()
            assert f"quick ran in {second['pid']}" in (tmp_path / "daemon.log").read_text()

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
            os.killpg(run_process_start(instance, killed)[0], signal.SIGKILL)
            run = _wait_for(lambda: _finished(instance, killed), 120, "run monitoring")
            assert run.status == dg.DagsterRunStatus.FAILURE
            assert any("is gone" in (e.message or "") for e in instance.all_logs(killed))
    finally:
        _stop(daemon)
        log.close()


def test_a_spare_run_process_takes_the_next_run_and_never_outlives_its_worker(
        tmp_path: Path) -> None:
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._serdes import serialize_value

    from lakehouse.run_launcher import WarmWorker
    from lakehouse.run_worker import SPARE_DELAY_SECONDS, SPARES

    home, defs_file, _env = _dev_instance(tmp_path, DEFS)
    recon = ReconstructableRepository.for_file(str(defs_file), "defs",
                                               working_directory=str(tmp_path))
    job = recon.get_definition().get_job("quick_job")
    folder = Path(tempfile.mkdtemp(prefix="spare-"))  # a Unix socket's path is short
    worker = WarmWorker(recon.get_python_origin(), folder)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        ref = serialize_value(instance.get_ref())

        def run_once() -> tuple[int, dg.DagsterRun]:
            run = instance.create_run_for_job(job, job_code_origin=recon.get_reconstructable_job(
                "quick_job").get_python_origin())
            pid = worker.launch(run.run_id, ref)
            return pid, _wait_for(lambda: _finished(instance, run.run_id), 120, "the run")

        def spares() -> list[psutil.Process]:
            children = psutil.Process(worker._process.pid).children()  # noqa: SLF001
            return sorted((c for c in children if c.status() != psutil.STATUS_ZOMBIE),
                          key=lambda c: c.create_time())

        try:
            first_pid, first = run_once()  # no spare yet: the worker forks for it
            assert first.status == dg.DagsterRunStatus.SUCCESS
            # Each spare leaves the worker's session first thing after its fork: on a loaded
            # machine a spare can be seen between the two, so wait for both.
            waiting = _wait_for(
                lambda: len(s := spares()) == SPARES
                and all(os.getsid(p.pid) == p.pid for p in s) and s,
                30 + SPARES * SPARE_DELAY_SECONDS, "the spare run processes, in their own sessions")
            assert first_pid not in {p.pid for p in waiting}
            # Two runs launched at once are the spares': the pids handed back are the waiting
            # processes, the oldest first.
            run_a, run_b = (instance.create_run_for_job(
                job, job_code_origin=recon.get_reconstructable_job("quick_job")
                .get_python_origin()) for _ in range(2))
            pids = [worker.launch(run.run_id, ref) for run in (run_a, run_b)]
            assert pids == [p.pid for p in waiting]
            second, third = (_wait_for(lambda r=r: _finished(instance, r.run_id), 120, "a run")
                             for r in (run_a, run_b))
            assert second.status == third.status == dg.DagsterRunStatus.SUCCESS
            # Each run's first event names its process (what termination signals).
            assert run_process_start(instance, first.run_id)[0] == first_pid
            assert [run_process_start(instance, r.run_id)[0] for r in (second, third)] == pids
            metadata = [e.asset_materialization.metadata for e in instance
                        .fetch_materializations(dg.AssetKey("quick"), limit=10).records]
            assert {m["pid"].value for m in metadata} == {first_pid, *pids}
            assert {m["parent"].value for m in metadata} == {worker._process.pid}  # noqa: SLF001
            # The worker's end of the pipes closes with it: its spares do not stay behind.
            last = _wait_for(lambda: len(s := [p for p in spares() if p.pid not in pids])
                             == SPARES and s, 30 + SPARES * SPARE_DELAY_SECONDS,
                             "the next spares")
            worker.stop()
            _gone, alive = psutil.wait_procs(last, timeout=10)
            assert not alive
        finally:
            worker.stop()
            shutil.rmtree(folder, ignore_errors=True)


def test_a_launching_process_keeps_its_connections_and_every_process_sees_its_writes(
        tmp_path: Path, monkeypatch) -> None:
    """The daemon's (or webserver's) instance after its first launch: kept SQLite engines,
    shared by its threads, at most LAUNCHER_KEPT_ENGINES run shards of them."""
    import threading

    from dagster._core.events import DagsterEvent

    from lakehouse import run_worker

    kept_shards = 3  # fewer than the default, for fewer runs to go past it
    monkeypatch.setattr(run_worker, "LAUNCHER_KEPT_ENGINES", kept_shards)
    home, _defs_file, _env = _dev_instance(tmp_path, DEFS)

    def open_shards() -> set[str]:
        return {Path(f.path).name for f in psutil.Process().open_files()
                if f.path.endswith(".db") and Path(f.path).name != "index.db"
                and Path(f.path).parent.name == "runs"}

    with dg.DagsterInstance.from_config(str(home)) as launcher, \
            dg.DagsterInstance.from_config(str(home)) as other:
        assert run_worker.keep_launcher_connections(launcher)
        run_ids: list[str] = []
        errors: list[BaseException] = []

        def launch(count: int) -> None:  # what the dequeuer does before calling the launcher
            try:
                for _ in range(count):
                    run = launcher.create_run_for_job(small)
                    launcher.report_dagster_event(DagsterEvent(
                        dg.DagsterEventType.PIPELINE_STARTING.value, job_name="small"),
                        run_id=run.run_id)
                    launcher.report_engine_event("launched", launcher.get_run_by_id(run.run_id))
                    launcher.add_run_tags(run.run_id, {"lakehouse/test": "kept"})
                    run_ids.append(run.run_id)
            except BaseException as error:  # noqa: BLE001 - reported by the test
                errors.append(error)

        threads = [threading.Thread(target=launch, args=(2,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors
        assert len(run_ids) == 8
        # Older shards' engines were let go, with their open files: the engines kept are the
        # least recently used out of kept_shards + 2 (the runs and index databases count among
        # them, and four threads at once can make one of those the least recent for a moment).
        assert 0 < len(open_shards()) <= kept_shards + 2
        # Another process's instance (an engine per call) sees every write, and the launcher's
        # kept connections see the other's: each read is its own transaction, never a stale one.
        for run_id in run_ids:
            run = other.get_run_by_id(run_id)
            assert run.status == dg.DagsterRunStatus.STARTING
            assert run.tags["lakehouse/test"] == "kept"
            assert [e.message for e in other.all_logs(run_id, of_type=dg.DagsterEventType
                                                      .ENGINE_EVENT)] == ["launched"]
            other.report_run_canceled(run)
            assert launcher.get_run_by_id(run_id).status == dg.DagsterRunStatus.CANCELED
            assert [e.dagster_event_type for e in launcher.all_logs(run_id)][-1] \
                == dg.DagsterEventType.PIPELINE_CANCELED
        # The run's start and end times are recorded as Dagster records them (the runs table's
        # columns are known to the launcher).
        assert launcher.get_run_record_by_id(run_ids[0]).end_time is not None


def test_a_run_process_commits_without_waiting_for_fsyncs_and_a_kill_loses_none_of_its_writes(
        tmp_path: Path) -> None:
    """A run's process keeps its SQLite connections with synchronous=NORMAL (its commits wait
    for no fsync); what it committed before being SIGKILLed (no close, no checkpoint) is read
    whole by every other process, from consistent databases. A launching process's kept
    connections keep Dagster's synced commits."""
    import json

    from dagster._core.events import DagsterEvent

    from lakehouse.run_worker import _pooled_sqlite, keep_launcher_connections

    home, _defs_file, _env = _dev_instance(tmp_path, DEFS)

    def synchronous(instance: dg.DagsterInstance, run_id: str) -> list[int]:
        # the storages' own connect methods (the kept engines' once replaced)
        with instance.event_log_storage._connect(run_id) as events, \
                instance.run_storage.connect() as runs:
            return [conn.exec_driver_sql("PRAGMA synchronous").scalar() for conn in (events, runs)]

    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.create_run_for_job(small)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the run's process
            try:
                os.close(read_end)
                with _pooled_sqlite(instance):
                    instance.report_dagster_event(DagsterEvent(
                        dg.DagsterEventType.PIPELINE_START.value, job_name="small"),
                        run_id=run.run_id)
                    for n in range(20):
                        instance.report_engine_event(f"event {n}", run)
                    os.write(write_end, json.dumps(synchronous(instance, run.run_id)).encode())
                    os.kill(os.getpid(), signal.SIGKILL)
            finally:
                os._exit(1)
        os.close(write_end)
        _pid, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        with os.fdopen(read_end) as pipe:
            assert json.load(pipe) == [1, 1]  # NORMAL, in the run's process
    with dg.DagsterInstance.from_config(str(home)) as other:
        assert other.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
        assert [e.message for e in other.all_logs(
            run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)] == [f"event {n}" for n in range(20)]
        databases = [*(home / "history").glob("*.db"), *(home / "history/runs").glob("*.db")]
        assert {p.name for p in databases} >= {"runs.db", "index.db", f"{run.run_id}.db"}
        for database in databases:
            with contextlib.closing(sqlite3.connect(database)) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",), database
        assert keep_launcher_connections(other)
        assert synchronous(other, run.run_id) == [2, 2]  # FULL: a launch's writes stay synced


def test_the_worker_watches_the_project_modules_and_not_a_checkout_s_virtual_environment(
        tmp_path: Path, monkeypatch) -> None:
    """A run worker answers "stale" when a module it loaded from the project changes; the
    libraries of a virtual environment inside the checkout (``make setup``'s ``.venv``) are not
    the project's, and stating thousands of them before every launch was on its path."""
    from lakehouse.run_worker import _changed, _watched_files

    library = tmp_path / ".venv/lib/python3.11/site-packages/somelib"
    library.mkdir(parents=True)
    (library / "__init__.py").write_text("VALUE = 1\n")
    (tmp_path / "project_module.py").write_text("VALUE = 2\n")
    monkeypatch.syspath_prepend(str(library.parent))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "somelib", raising=False)
    monkeypatch.delitem(sys.modules, "project_module", raising=False)
    __import__("somelib")
    __import__("project_module")
    try:
        watched = _watched_files(tmp_path.resolve())
        assert str(tmp_path / "project_module.py") in watched
        assert not [path for path in watched if "site-packages" in path]
        assert not _changed(watched)
        os.utime(tmp_path / "project_module.py", ns=(1, 1))
        assert _changed(watched)
    finally:
        sys.modules.pop("somelib", None)
        sys.modules.pop("project_module", None)


def test_a_resource_class_s_config_schema_is_inferred_once_and_config_is_still_checked() -> None:
    """The worker infers each resource class's config schema once (a run builds its resources
    again before its first step): the same schema every time, and a wrong value still refused."""
    from lakehouse.run_worker import cache_resource_schemas

    cache_resource_schemas()

    class Target(dg.ConfigurableResource):
        url: str
        retries: int = 3

    first, second = Target(url="http://a"), Target(url="http://b", retries=5)
    assert first._schema is second._schema  # noqa: SLF001
    assert (first.url, first.retries, second.url, second.retries) == ("http://a", 3, "http://b", 5)
    with_values = first._with_updated_values({"retries": 7})  # noqa: SLF001 - what a run calls
    assert (with_values.url, with_values.retries) == ("http://a", 7)
    import pydantic

    try:
        Target(url="http://c", retries="many")
    except pydantic.ValidationError as error:
        assert "retries" in str(error)
    else:
        raise AssertionError("a wrong value was accepted")


def test_terminate_interrupts_the_process_a_run_names_and_leaves_a_fallen_back_run_to_dagster(
        tmp_path: Path) -> None:
    """``terminate`` signals the process the run's first event names ("Started process for run
    (pid: N)"); a run whose launch fell back to Dagster's default path is left to Dagster's
    launcher (here it has no code server to ask, so nothing is signalled)."""
    from dagster._core.events import EngineEventData

    from lakehouse.run_launcher import FELL_BACK, LocalRunLauncher, run_process_start

    home, _defs_file, _env = _dev_instance(tmp_path, DEFS)
    processes = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
                 for _ in range(2)]
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert isinstance(instance.run_launcher, LocalRunLauncher)
            warm, fell_back = (instance.create_run_for_job(small) for _ in range(2))
            instance.report_engine_event(f"{FELL_BACK} (test); starting the run in a new process.",
                                         fell_back)
            for run, process in zip((warm, fell_back), processes, strict=True):
                instance.report_engine_event(f"Started process for run (pid: {process.pid}).",
                                             run, EngineEventData.in_process(process.pid))
                assert run_process_start(instance, run.run_id)[0] == process.pid

            assert instance.run_launcher.terminate(warm.run_id)
            assert processes[0].wait(timeout=20) == -signal.SIGINT
            assert instance.get_run_by_id(warm.run_id).status == dg.DagsterRunStatus.CANCELING

            assert not instance.run_launcher.terminate(fell_back.run_id)
            assert processes[1].poll() is None  # not signalled by this launcher
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=10)
