"""A warm run worker: one process per code location that has loaded the code once and forks a
child per run, so a small run costs its work, not a Python start-up and a code location load.

Dagster's default launcher asks the code server to start each run in a freshly spawned process,
which imports Dagster and the project and builds the Definitions again: about 4 s on a quiet
2-core machine, where a 5-minute Twitter batch works for 1-2 s and a Telegram poll for 0.1 s.
Here the worker does that once; a run is an ``os.fork()`` of it (a few milliseconds), and the
child executes the run exactly as ``dagster api execute_run`` does (same events, same compute
logs, its own instance connections).

Forking is safe because the worker never computes anything: it imports, builds the repository
and waits. Its only other threads are the idle ones some libraries start at import (allocator
purgers, a spill-file cleaner), and before each fork it checks that this is still so
(``fork_hazards``); if not, it refuses and the launcher falls back to Dagster's own path. The
child resets what it inherited (signal handlers, the session) before it runs.

The worker notices new code: before each fork it compares the modification times of the files it
loaded from the project (and the dbt manifest) with those at start-up, and answers "stale" when
they differ, so the launcher starts a fresh worker; runs in flight finish on the code they began
with. It exits when the process that started it (the daemon or the webserver) is gone.

What a run in a fork does not pay again: the instance (the worker's own, when it is the same
instance on SQLite, whose storages hold no connection between calls), Dagster's schema check
loading its ~350 alembic migration scripts (``cache_alembic_scripts``: about 20 ms each time a
process first touches a database, run shards included), the resolution of its job and the job's
run config schema, and garbage collections over the whole code location (``gc.freeze``). And
what it does not pay for each event (``_pooled_sqlite``): Dagster's SQLite storages build an
engine, connect, compile the statement and close for every event and every read, and the close
of the last connection to a WAL database rewrote the database and deleted its WAL (about 10 ms
an event here); the run keeps one engine per database open instead, with the same
transactions, whose commits do not wait for an fsync each (``_synced_at_checkpoints``).

And what a launch does not wait for: the fork itself, the child's first scheduling and its
SQLite set-up are done ahead by a spare (``_fork_spare``), forked when no launch came for half a
second (then another, up to ``SPARES``: runs are often launched two at once) and waiting on a
pipe for its run's id; the run that comes takes the oldest (its pid is the run's), and a launch
that finds none forks as before. Dagster's records compile their checked
constructors at their first instance, and a run is made of them: the worker builds them once
(``_rehearse``), so a fork inherits them compiled; and each spare builds a plan again while it
waits, so that the pages a run's set-up writes are copied before its run comes.

Protocol (one JSON line each way on a Unix socket): ``{"run_id", "instance_ref"}`` ->
``{"pid"}`` | ``{"stale": true}`` | ``{"error"}``.
"""

import argparse
import contextlib
import gc
import json
import os
import signal
import socket
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

# A connection is served within this; the launcher waits a little longer.
REQUEST_TIMEOUT_SECONDS = 10.0
PARENT_CHECK_SECONDS = 1.0
# A spare run process is forked after this long without a launch (see _fork_spare), one at a
# time, until SPARES wait: a sensor's tick or the queue's often launches two runs at once.
SPARE_DELAY_SECONDS = 0.5
SPARES = 2


# Native threads the libraries start at import and that idle until used: jemalloc's background
# purgers (its fork hooks keep the allocator consistent in the child), Polars' spill-file cleaner
# and pyarrow's unnamed helper (shown with the interpreter's name). A compute pool (rayon, tokio,
# Arrow's CPU pool) appears only once something computes, which the worker never does.
IDLE_NATIVE_THREADS = frozenset({"jemalloc_bg_thd", "polars-ooc-clea", "python"})


def fork_hazards() -> list[str]:
    """What would make a fork unsafe now: a Python thread besides this one, or a native thread
    that is not a known idle one or is not asleep (it might hold a lock the child would inherit)."""
    hazards = [f"Python thread {t.name}" for t in threading.enumerate()
               if t is not threading.main_thread()]
    me = str(threading.get_native_id())
    try:
        tasks = [t for t in os.listdir("/proc/self/task") if t != me]
    except OSError:
        return [*hazards, "no /proc to inspect threads"]
    for task in tasks:
        try:
            name = Path(f"/proc/self/task/{task}/comm").read_text().strip()
            state = Path(f"/proc/self/task/{task}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # it ended
        if name not in IDLE_NATIVE_THREADS or state != "S":
            hazards.append(f"native thread {name} ({state})")
    return hazards


def _watched_files(working_directory: Path) -> dict[str, int]:
    """The project's files whose change makes the loaded code stale: every module imported from
    the working directory but not from an environment's installed packages (a virtual
    environment inside the checkout, as ``make setup`` makes it, holds some 2,500 imported
    library modules: stating them all before each launch cost ~10 ms of CPU on its path), and
    the dbt manifest the gold assets were built from."""
    files = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path:
            continue
        resolved = Path(path).resolve()
        if resolved.is_relative_to(working_directory) and "site-packages" not in resolved.parts:
            files[path] = 0
    from lakehouse.lake.table_docs import manifest_path

    files[str(manifest_path())] = 0
    for path in files:
        try:
            files[path] = os.stat(path).st_mtime_ns
        except OSError:
            files[path] = -1
    return files


def _changed(files: dict[str, int]) -> bool:
    for path, mtime in files.items():
        try:
            if os.stat(path).st_mtime_ns != mtime:
                return True
        except OSError:
            if mtime != -1:
                return True
    return False


def cache_alembic_scripts() -> None:
    """Load Dagster's migration scripts once per worker, not once per database a process opens.

    Dagster checks a SQL storage's schema revision against its alembic scripts' head whenever a
    process first connects to a database (``check_alembic_revision``), and each check parses the
    ~350 scripts again (``ScriptDirectory.from_config``): about 20 ms on a quiet 2-core machine,
    paid by every run for its own event shard. The scripts are files of the installed Dagster:
    they cannot change under a running worker.
    """
    from alembic.script import ScriptDirectory

    if getattr(ScriptDirectory.from_config, "_lakehouse_cached", False):
        return
    load = ScriptDirectory.from_config
    loaded: dict[str, ScriptDirectory] = {}

    def from_config(config: Any) -> ScriptDirectory:
        location = config.get_main_option("script_location")
        if location not in loaded:
            loaded[location] = load(config)
        return loaded[location]

    from_config._lakehouse_cached = True  # type: ignore[attr-defined]
    ScriptDirectory.from_config = staticmethod(from_config)  # type: ignore[method-assign]


def cache_resource_schemas() -> None:
    """Infer each resource class's config schema once per worker, not at every construction.

    A run builds its resources again from their configured values before its first step
    (``ConfigurableResource._with_updated_values``, twice per resource), and each construction
    infers the class's config schema from its pydantic fields again: about 60% of a Telegram
    poll's resource initialisation (three resources). The schema depends only on the class and
    the fields left out (those holding other resources): built by the worker when it loads the
    code location, it is inherited by every fork.
    """
    from dagster._config.pythonic_config import resource

    infer = resource.infer_schema_from_config_class
    if getattr(infer, "_lakehouse_cached", False):
        return
    schemas: dict[tuple[type, frozenset[str]], Any] = {}

    def infer_schema_from_config_class(model_cls: type, description: str | None = None,
                                       fields_to_omit: set[str] | None = None,
                                       default: Any = None) -> Any:
        if description is not None or default is not None:
            return infer(model_cls, description, fields_to_omit, default)
        key = (model_cls, frozenset(fields_to_omit or ()))
        if key not in schemas:
            schemas[key] = infer(model_cls, fields_to_omit=fields_to_omit)
        return schemas[key]

    infer_schema_from_config_class._lakehouse_cached = True  # type: ignore[attr-defined]
    resource.infer_schema_from_config_class = infer_schema_from_config_class


def _load(origin_json: str, instance_ref_json: str) -> tuple[Any, Any]:
    """Import and build everything a run needs, then pin the built repository in its module so
    that a run's reconstruction (``recon_job_from_origin``) finds it instead of building it.
    Returns the instance, kept for the runs when forks may share it (``_shareable``, else
    None), and the code location's origin."""
    from dagster import DagsterInstance
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._serdes import deserialize_value

    cache_resource_schemas()  # before the resources are first built, by the Definitions
    origin = deserialize_value(origin_json)
    recon = ReconstructableRepository(origin.code_pointer, executable_path=origin.executable_path,
                                      entry_point=origin.entry_point)
    repository = recon.get_definition()
    pointer = origin.code_pointer
    attribute = getattr(pointer, "fn_name", None) or getattr(pointer, "attribute", None)
    module = sys.modules.get(getattr(pointer, "module", ""))
    if module is not None and attribute:
        setattr(module, attribute, repository)
    # Each job resolved and its run config schema built once, here, not in every run (a run
    # of a whole job finds both cached on the job; a subset of assets builds its own).
    for job in repository.get_all_jobs():
        job.run_config_schema  # noqa: B018
    # What every run imports when it starts: the instance's storage, the execution machinery and
    # the libraries the steps use (the code location itself imports them lazily).
    import dagster._cli.api  # noqa: F401
    import dagster._core.execution.plan.active  # noqa: F401
    import dagster._core.executor.in_process  # noqa: F401
    import deltalake  # noqa: F401
    import pandas  # noqa: F401 - Arrow and delta-rs writes import it on first use (~0.3 s)
    import polars  # noqa: F401
    import pyarrow  # noqa: F401
    import pyarrow.pandas_compat  # noqa: F401
    import requests  # noqa: F401

    cache_alembic_scripts()
    instance = DagsterInstance.from_ref(deserialize_value(instance_ref_json))
    instance.get_runs_count()
    instance.compute_log_manager  # noqa: B018 - built (and its module imported) once, here
    instance.run_coordinator  # noqa: B018 - each run reads its concurrency settings
    _rehearse(instance, origin)
    if _shareable(instance):
        return instance, origin
    instance.dispose()
    return None, origin


def _rehearse(instance: Any, origin: Any) -> None:
    """What a run reads and builds before its first step, done without writing anything, so
    that a run finds it warm. In the worker, once, for every fork: Dagster's record classes
    compile their checked constructors at their first instance (``JitCheckedNew``: an ``exec``
    each, about 15 of them before a run's first step), and the run, its plan snapshot and its
    execution plan are made of such records. Again in each spare while it waits: a fork shares
    the worker's memory until it writes to it, and reading Python objects writes their
    reference counts, so building a plan copies the pages of the job, its config types and
    Dagster's machinery (about 550 page faults of the run's 3,000 before its first step), and
    the memory it frees is reused by the run instead of being mapped again. The latest run is
    the one read (in the worker, the run that started it), when it is this code location's.
    A warm-up only: a failure is printed and the runs build what they need."""
    try:
        _plan_latest_run(instance, origin)
    except Exception:  # noqa: BLE001
        import traceback

        traceback.print_exc()


def _plan_latest_run(instance: Any, origin: Any) -> None:
    from dagster._core.execution.api import create_execution_plan
    from dagster._utils.hosted_user_process import recon_job_from_origin

    run = next(iter(instance.get_runs(limit=1)), None)
    if (run is None or run.job_code_origin is None or not run.execution_plan_snapshot_id
            or run.job_code_origin.repository_origin != origin):
        return  # nothing to read, or another code location's run: never load its code here
    snapshot = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
    job = recon_job_from_origin(run.job_code_origin).with_repository_load_data(
        snapshot.repository_load_data)
    if run.resolved_op_selection or run.asset_selection or run.asset_check_selection:
        return  # a subset is built per run
    create_execution_plan(job, run_config=run.run_config,
                          step_keys_to_execute=run.step_keys_to_execute,
                          instance_ref=instance.get_ref(), tags=run.tags,
                          repository_load_data=snapshot.repository_load_data,
                          known_state=snapshot.initial_known_state)


def _shareable(instance: Any) -> bool:
    """Whether forks may use this process's instance: its storages are Dagster's SQLite ones,
    whose engines keep no connection between calls (a pooled connection, as Postgres storage
    may keep, must not be used by two processes)."""
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
    from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
    from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import (
        SqliteScheduleStorage,
    )

    return (isinstance(instance.run_storage, SqliteRunStorage)
            and isinstance(instance.event_log_storage, SqliteEventLogStorage)
            and isinstance(instance.schedule_storage, SqliteScheduleStorage | None))


def _synced_at_checkpoints(connection: Any, _record: Any) -> None:
    """SQLite's ``synchronous=NORMAL`` on a new connection of a run's process (Dagster's SQLite
    databases are in WAL mode): a commit is appended to the WAL without waiting for its fsync;
    SQLite syncs the WAL at each checkpoint. A commit survives its process being killed (the
    WAL is in the operating system's cache) and the database stays consistent whatever
    happens; an operating system crash or a power cut can lose a run's last commits, as it can
    the run's own writes to a local lake (delta-rs does not fsync): see README."""
    cursor = connection.cursor()
    try:
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


class _Engines:
    """SQLAlchemy engines kept per SQLite database (each with SQLAlchemy's default pool for
    SQLite files, which hands a connection to one thread at a time), at most ``limit`` of them:
    the least recently used is disposed when another is needed. ``synced_commits=False``: their
    connections commit without an fsync each (``_synced_at_checkpoints``)."""

    def __init__(self, limit: int | None = None, synced_commits: bool = True) -> None:
        self._engines: OrderedDict[str, Any] = OrderedDict()
        self._limit = limit
        self._synced_commits = synced_commits
        self._lock = threading.Lock()

    def get(self, conn_string: str, **kwargs: Any) -> Any:
        from dagster._core.storage.sql import create_engine
        from sqlalchemy import event

        with self._lock:
            kept = self._engines.get(conn_string)
            if kept is None:
                kept = self._engines[conn_string] = create_engine(conn_string, **kwargs)
                if not self._synced_commits:
                    event.listen(kept, "connect", _synced_at_checkpoints)
                if self._limit is not None and len(self._engines) > self._limit:
                    # a connection still checked out of it is closed when it is returned
                    self._engines.popitem(last=False)[1].dispose()
            self._engines.move_to_end(conn_string)
            return kept

    def dispose(self) -> None:
        with self._lock:
            for kept in self._engines.values():
                kept.dispose()
            self._engines.clear()


def _keep_connections(instance: Any, engines: _Engines) -> bool:
    """Make ``instance``'s SQLite run and event storages (this process's objects) use kept
    engines instead of an engine per call; False if they are not Dagster's SQLite ones.

    Dagster's SQLite storages build an engine, connect, commit and close for every event and
    every read (``SqliteEventLogStorage._connect``, ``SqliteRunStorage.connect``): each time
    paying the engine's set-up, SQLAlchemy compiling the statement again (its cache lives on
    the engine) and, when the last connection to a WAL database closes, SQLite checkpointing
    the WAL into the database. Here the same statements run in the same transactions (one per
    ``with`` block, committed at its end: each write commit syncs the WAL as before), the event
    log's still under its process-wide lock. The runs table's columns, which Dagster reflects
    before every run lookup and run status change to learn whether they include the start and
    end times, are read again only until they do (a migration adds them; none removes them)."""
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
    from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
    from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS

    events, runs = instance.event_log_storage, instance.run_storage
    if not (isinstance(events, SqliteEventLogStorage) and isinstance(runs, SqliteRunStorage)):
        return False

    @contextlib.contextmanager
    def connect_shard(shard: str) -> Iterator[Any]:
        # SqliteEventLogStorage._connect's steps, on a kept engine
        with events._db_lock:  # noqa: SLF001
            shard_engine = engines.get(events.conn_string_for_shard(shard),
                                       connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
            if shard not in events._initialized_dbs:  # noqa: SLF001
                events._initdb(shard_engine)  # noqa: SLF001
                events._initialized_dbs.add(shard)  # noqa: SLF001
            with shard_engine.connect() as conn, conn.begin():
                yield conn

    @contextlib.contextmanager
    def connect_runs() -> Iterator[Any]:
        with engines.get(runs._conn_string).connect() as conn, conn.begin():  # noqa: SLF001
            yield conn

    events._connect = connect_shard  # noqa: SLF001 - this process's copy only
    runs.connect = connect_runs  # type: ignore[method-assign]
    reflect = runs.has_run_stats_index_cols
    has_stats_columns = False

    def has_run_stats_index_cols() -> bool:
        nonlocal has_stats_columns
        has_stats_columns = has_stats_columns or reflect()
        return has_stats_columns

    runs.has_run_stats_index_cols = has_run_stats_index_cols  # type: ignore[method-assign]
    return True


# Run shards whose engines a launching process keeps (besides the runs and the index
# databases): the runs being launched and watched; an older run's is built again when read.
LAUNCHER_KEPT_ENGINES = 16


def keep_launcher_connections(instance: Any) -> bool:
    """For the process that launches runs (the daemon, the webserver): its instance's SQLite
    storages keep their engines for the process's life (``_keep_connections``), so that a
    launch (storing the run's STARTING event, reading the run back) costs its statements, not
    an engine, a compilation and a WAL checkpoint each. Once per instance; False if its
    storages are not Dagster's SQLite ones."""
    if getattr(instance, "_lakehouse_kept_connections", False):
        return True
    kept = _keep_connections(instance, _Engines(limit=LAUNCHER_KEPT_ENGINES + 2))
    instance._lakehouse_kept_connections = kept  # noqa: SLF001
    return kept


@contextlib.contextmanager
def _pooled_sqlite(instance: Any, warm: bool = False) -> Iterator[None]:
    """The run's SQLite connections kept open and reused for its duration (``_keep_connections``):
    a run of one step stores and reads about a hundred times. The engines are built in the
    run's process, never inherited with a connection (SQLite connections must not cross a
    fork), and disposed when the run ends (the last close checkpoints the WAL). Its commits
    do not wait for an fsync each (``_synced_at_checkpoints``): about ten before its first
    step, each a millisecond on a quiet disk and several when other processes write."""
    engines = _Engines(synced_commits=False)
    kept = _keep_connections(instance, engines)
    if kept and warm:
        # A spare's waiting time: its connections opened, the index shard's schema checked,
        # and the statements of a run's first reads compiled (SQLAlchemy caches them on the
        # kept engines) by reading the latest run and its plan, as its run will read its own.
        with instance.event_log_storage.index_connection():
            pass
        latest = next(iter(instance.get_runs(limit=1)), None)
        if latest is not None and instance.get_run_by_id(latest.run_id) is not None \
                and latest.execution_plan_snapshot_id:
            instance.get_execution_plan_snapshot(latest.execution_plan_snapshot_id)
    try:
        yield
    finally:
        engines.dispose()


def _execute(run_id: str, instance: Any) -> int:
    """Execute the run as ``dagster api execute_run`` does: its first event, "Started process
    for run", names this process (what ``run_process_pid`` reads to terminate the run)."""
    from dagster._cli.api import _execute_run_command_body
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
    from dagster._utils.interrupts import capture_interrupts

    events = instance.event_log_storage
    if isinstance(events, SqliteEventLogStorage) and os.path.exists(events.path_for_shard(run_id)):
        # The launch stored the run's STARTING event in its shard (``instance.launch_run``),
        # creating and checking its schema with this Dagster: not checked again here.
        events._initialized_dbs.add(run_id)  # noqa: SLF001

    with capture_interrupts():
        return _execute_run_command_body(run_id, instance, lambda _event: None,
                                         set_exit_code_on_failure=True)


def _run(run_id: str, instance_ref_json: str, shared: tuple[str, Any] | None) -> int:
    """In a child forked for this run: execute it with the worker's instance if it is the one
    the run is for."""
    from dagster import DagsterInstance
    from dagster._serdes import deserialize_value

    if shared is not None and shared[0] == instance_ref_json:
        instance = shared[1]
    else:
        instance = DagsterInstance.from_ref(deserialize_value(instance_ref_json))
    with instance, _pooled_sqlite(instance):
        return _execute(run_id, instance)


class Spare(NamedTuple):
    """A child forked ahead of its run, ready, waiting on a pipe for the run's id."""

    pid: int
    pipe: int  # the write end, held by the worker only


# The write ends of the spares' pipes: every child closes those it inherited, so that a spare
# sees the end of its pipe (and exits) when the worker closes its end or is gone.
_spare_pipes: set[int] = set()


def _become_run_process(listener: socket.socket, conn: socket.socket | None) -> None:
    """In a fresh child: drop the worker's sockets and pipes, and its session and signals."""
    listener.close()
    if conn is not None:
        conn.close()
    for pipe in _spare_pipes:
        os.close(pipe)
    _spare_pipes.clear()
    os.setsid()  # the worker's stop or its terminal's Ctrl-C do not reach runs in flight
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)


def _child_exit(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _fork_run(request: dict, listener: socket.socket, conn: socket.socket,
              shared: tuple[str, Any] | None) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        _become_run_process(listener, conn)
        code = _run(request["run_id"], request["instance_ref"], shared)
    except BaseException:  # noqa: BLE001 - the run's own events carry the error
        import traceback

        traceback.print_exc()
    finally:
        _child_exit(code)


def _fork_spare(listener: socket.socket, shared: tuple[str, Any], origin: Any) -> Spare:
    """Fork the next run's process before its run is launched, so that launching it costs a
    write on a pipe: the fork itself (page tables of the whole code location, 10-15 ms here),
    the child's first scheduling and the run's SQLite set-up (engines, the runs table's schema,
    the index shard's schema check) are paid while nothing waits. It waits for its run with
    the worker's instance (the spare is used only for runs on that instance) and exits when
    the pipe closes (the code changed, the worker stopped or died)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid:
        os.close(read_end)
        _spare_pipes.add(write_end)
        return Spare(pid, write_end)
    code = 1
    try:
        os.close(write_end)
        _become_run_process(listener, None)
        ready = contextlib.ExitStack()
        try:
            ready.enter_context(shared[1])
            ready.enter_context(_pooled_sqlite(shared[1], warm=True))
            _rehearse(shared[1], origin)
        except Exception:  # noqa: BLE001 - its run sets up as a fork does, on a fresh instance
            import traceback

            traceback.print_exc()
            ready = None
        with os.fdopen(read_end, "rb") as pipe:
            line = pipe.readline()
        if line and ready is not None:
            with ready:
                code = _execute(json.loads(line)["run_id"], shared[1])
        elif line:
            code = _run(json.loads(line)["run_id"], shared[0], None)
        else:
            code = 0  # not needed: the worker closed its end
    except BaseException:  # noqa: BLE001 - the run's own events carry the error
        import traceback

        traceback.print_exc()
    finally:
        _child_exit(code)


def _use_spare(spare: Spare, request: dict) -> bool:
    """Hand the run to the spare; False if the spare is gone (killed), and it is let go."""
    _spare_pipes.discard(spare.pipe)
    try:
        os.write(spare.pipe, json.dumps({"run_id": request["run_id"]}).encode() + b"\n")
        return True
    except OSError:
        return False
    finally:
        os.close(spare.pipe)


def _take_spare(spares: list[Spare], shared: tuple[str, Any] | None,
                request: dict) -> Spare | None:
    """The oldest waiting spare that took the run (one killed meanwhile is let go), or None:
    none waits, or the run is for another instance than the spares'."""
    if shared is None or request["instance_ref"] != shared[0]:
        return None
    while spares:
        spare = spares.pop(0)
        if _use_spare(spare, request):
            return spare
    return None


def _drop_spare(spare: Spare | None) -> None:
    if spare is not None and spare.pipe in _spare_pipes:
        _spare_pipes.discard(spare.pipe)
        os.close(spare.pipe)  # it reads the end of its pipe and exits


def _reap(_signum: int, _frame: object) -> None:
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def serve(socket_path: str, origin_json: str, instance_ref_json: str, parent_pid: int) -> None:
    working_directory = Path.cwd().resolve()
    instance, origin = _load(origin_json, instance_ref_json)
    # What was loaded lives as long as the worker: out of the collector's sight, a run's garbage
    # collections look only at what the run creates instead of the whole code location (and do
    # not copy the worker's pages by touching them).
    gc.collect()
    gc.freeze()
    shared = (instance_ref_json, instance) if instance is not None else None
    hazards = fork_hazards()
    if hazards:
        raise SystemExit(f"run worker: not safe to fork after loading the code ({hazards}); "
                         "runs take Dagster's own path")
    watched = _watched_files(working_directory)
    signal.signal(signal.SIGCHLD, _reap)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path + ".tmp")
    os.replace(socket_path + ".tmp", socket_path)  # the socket appears only when ready
    listener.listen(16)
    spares: list[Spare] = []  # the oldest first
    while os.getppid() == parent_pid:
        # The next spare is forked when no launch came for a while: not beside a run that
        # has just started (two cores); a launch finding none forks as before.
        listener.settimeout(SPARE_DELAY_SECONDS if len(spares) < SPARES and shared is not None
                            else PARENT_CHECK_SECONDS)
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            if len(spares) < SPARES and shared is not None and not fork_hazards() \
                    and not _changed(watched):
                spares.append(_fork_spare(listener, shared, origin))
            continue
        with conn:
            conn.settimeout(REQUEST_TIMEOUT_SECONDS)
            try:
                request = json.loads(conn.makefile("rb").readline())
                hazards = fork_hazards()
                if _changed(watched):
                    reply: dict = {"stale": True}
                elif (spare := _take_spare(spares, shared, request)) is not None:
                    reply = {"pid": spare.pid}
                elif hazards:
                    reply = {"error": f"not safe to fork now: {hazards}"}
                else:
                    reply = {"pid": _fork_run(request, listener, conn, shared)}
            except Exception as error:  # noqa: BLE001 - answered, and the launcher falls back
                reply = {"error": f"{type(error).__name__}: {error}"}
            spares = [spare for spare in spares if spare.pipe in _spare_pipes]  # not used or gone
            conn.sendall(json.dumps(reply).encode() + b"\n")
            if reply.get("stale"):
                break
    for spare in spares:
        _drop_spare(spare)
    listener.close()
    Path(socket_path).unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--socket", required=True)
    parser.add_argument("--parent", type=int, required=True)
    args = parser.parse_args()
    # The origin and the instance reference come on stdin: they can be long, and an instance
    # reference may name a database password.
    origin_json, instance_ref_json = sys.stdin.readline().strip(), sys.stdin.readline().strip()
    sys.stdin.close()
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    serve(args.socket, origin_json, instance_ref_json, args.parent)


if __name__ == "__main__":
    main()
