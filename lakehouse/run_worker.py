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

Protocol (one JSON line each way on a Unix socket): ``{"run_id", "instance_ref"}`` ->
``{"pid"}`` | ``{"stale": true}`` | ``{"error"}``.
"""

import argparse
import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path

# A connection is served within this; the launcher waits a little longer.
REQUEST_TIMEOUT_SECONDS = 10.0
PARENT_CHECK_SECONDS = 1.0


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
    the working directory, and the dbt manifest the gold assets were built from."""
    files = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and Path(path).resolve().is_relative_to(working_directory):
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


def _load(origin_json: str, instance_ref_json: str) -> None:
    """Import and build everything a run needs, then pin the built repository in its module so
    that a run's reconstruction (``recon_job_from_origin``) finds it instead of building it."""
    from dagster import DagsterInstance
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._serdes import deserialize_value

    origin = deserialize_value(origin_json)
    recon = ReconstructableRepository(origin.code_pointer, executable_path=origin.executable_path,
                                      entry_point=origin.entry_point)
    repository = recon.get_definition()
    pointer = origin.code_pointer
    attribute = getattr(pointer, "fn_name", None) or getattr(pointer, "attribute", None)
    module = sys.modules.get(getattr(pointer, "module", ""))
    if module is not None and attribute:
        setattr(module, attribute, repository)
    # What every run imports when it starts: the instance's storage, the execution machinery and
    # the libraries the steps use (the code location itself imports them lazily).
    import dagster._cli.api  # noqa: F401
    import deltalake  # noqa: F401
    import polars  # noqa: F401
    import pyarrow  # noqa: F401
    import requests  # noqa: F401

    with DagsterInstance.from_ref(deserialize_value(instance_ref_json)) as instance:
        instance.get_runs_count()


def _run(run_id: str, instance_ref_json: str) -> int:
    """In the forked child: execute the run as ``dagster api execute_run`` does."""
    from dagster import DagsterInstance
    from dagster._cli.api import _execute_run_command_body
    from dagster._serdes import deserialize_value
    from dagster._utils.interrupts import capture_interrupts

    with capture_interrupts(), DagsterInstance.from_ref(deserialize_value(instance_ref_json)) as instance:
        return _execute_run_command_body(run_id, instance, lambda _event: None,
                                         set_exit_code_on_failure=True)


def _fork_run(request: dict, listener: socket.socket, conn: socket.socket) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        listener.close()
        conn.close()
        os.setsid()  # the worker's stop or its terminal's Ctrl-C do not reach runs in flight
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        code = _run(request["run_id"], request["instance_ref"])
    except BaseException:  # noqa: BLE001 - the run's own events carry the error
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


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
    _load(origin_json, instance_ref_json)
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
    listener.settimeout(PARENT_CHECK_SECONDS)
    while os.getppid() == parent_pid:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        with conn:
            conn.settimeout(REQUEST_TIMEOUT_SECONDS)
            try:
                request = json.loads(conn.makefile("rb").readline())
                hazards = fork_hazards()
                if _changed(watched):
                    reply: dict = {"stale": True}
                elif hazards:
                    reply = {"error": f"not safe to fork now: {hazards}"}
                else:
                    reply = {"pid": _fork_run(request, listener, conn)}
            except Exception as error:  # noqa: BLE001 - answered, and the launcher falls back
                reply = {"error": f"{type(error).__name__}: {error}"}
            conn.sendall(json.dumps(reply).encode() + b"\n")
            if reply.get("stale"):
                break
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
