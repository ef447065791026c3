"""Soak: the production-like stack on this machine, fed by the sample backends for a while.

Started here, all on 127.0.0.1 free ports, each process stopped by its own PID at the end:

- a private PostgreSQL 15 cluster in a temporary folder (initdb and pg_ctl as the postgres user)
  holding the Dagster instance;
- moto's standalone S3 server, with a bucket: the lake is ``s3://<bucket>/lake``;
- ``DAGSTER_HOME`` with ``deploy/dagster-production.yaml`` (its ``DAGSTER_PG_*`` variables point
  at that cluster). Two adaptations, said in the report: the default run launcher replaces ECS
  (no ECS here; each run is its own process on this machine), and ``--max-concurrent-runs``
  (default 4, for 2 cores) replaces the file's 20;
- ``dagster-webserver`` and ``dagster-daemon`` (``-w workspace.yaml``): every sensor and
  schedule at its default status, as a user leaves them;
- traffic: Telegram updates (the sample chat's, dated now) POSTed to ``lakehouse telegram
  webhook`` at ``--telegram-rate`` per second (``TELEGRAM_MODE=webhook``, so the poll sensor
  skips), the sample stream through ``lakehouse twitter stream`` (batches sealed every
  ``--stream-max-age`` seconds), and the recent-search schedule (every 5 minutes) on the
  sample API.

After ``--minutes`` the traffic stops (the webhook and the stream seal their open batch), the
stack is given up to ``--drain-minutes`` to load what landed, and the report says: runs by
status and job (from the instance), queued runs left, records sent vs rows in silver (Telegram
messages, tweets), active files per Delta table, and the peak memory of each process (and of
the largest run process).

Usage: python bench/soak.py [--minutes 10] [--drain-minutes 8] [--keep]   (or ``make soak``)
"""

import argparse
import contextlib
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
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import psutil
import requests
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")
WEBHOOK_PATH = "/telegram/webhook"
SECRET = "soak-webhook-secret"
IN_FLIGHT = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(url, timeout=5)
            return
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout:.0f} s") from None
            time.sleep(1)


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


class Postgres:
    """A private cluster in its own temporary folder, owned by the postgres user."""

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists() or os.geteuid() != 0 or not shutil.which("runuser"):
            raise SystemExit("the soak needs PostgreSQL 15 binaries and root (to run them as "
                             "the postgres user)")
        self.folder = Path(tempfile.mkdtemp(prefix="lakehouse-soak-pg-"))
        shutil.chown(self.folder, "postgres", "postgres")
        self.data, self.port = self.folder / "data", free_port()

    def _run(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> None:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust")
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-l",
                  str(self.folder / "log"), "-o",
                  f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                  "-c max_connections=200", "start")
        self._run(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "dagster")

    @property
    def pid(self) -> int | None:
        pid_file = self.data / "postmaster.pid"
        return int(pid_file.read_text().split()[0]) if pid_file.exists() else None

    def stop(self) -> None:
        # pg_ctl stops the postmaster by the pid in its own pid file.
        if self.pid is not None:
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


class Processes:
    """The stack's long-running processes by name; stopped by their own PID, newest first."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: dict[str, subprocess.Popen] = {}
        self.peak_rss: Counter[str] = Counter()
        self.peak_tree_rss: Counter[str] = Counter()
        self.peak_run_rss = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        out = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115 (the process owns it)
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        if not self._sampler.is_alive():
            self._sampler.start()
        return proc

    def _sample(self) -> None:
        while not self._stop.wait(3.0):
            self.sample_once()

    def sample_once(self) -> None:
        for name, proc in list(self.procs.items()):
            try:
                top = psutil.Process(proc.pid)
                own = top.memory_info().rss
                tree = own
                for child in top.children(recursive=True):
                    try:
                        rss = child.memory_info().rss
                        tree += rss
                        # Below the daemon and the webserver: their code servers (``api
                        # grpc``) and the runs those start (and a run's dbt process).
                        if "api grpc" not in " ".join(child.cmdline()):
                            self.peak_run_rss = max(self.peak_run_rss, rss)
                    except psutil.Error:
                        continue
            except psutil.Error:
                continue
            self.peak_rss[name] = max(self.peak_rss[name], own)
            self.peak_tree_rss[name] = max(self.peak_tree_rss[name], tree)

    def stop(self, name: str, timeout: float = 60.0) -> int | None:
        """SIGTERM by PID (SIGKILL after ``timeout``), then the same for any of its children
        left running (a code server or a run the daemon started outlives it otherwise)."""
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else None
        try:
            children = psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:
            children = []
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait(timeout=30)
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.terminate()
        _, alive = psutil.wait_procs(children, timeout=20)
        for child in alive:
            with contextlib.suppress(psutil.Error):
                child.kill()
        return code

    def stop_all(self) -> None:
        self._stop.set()
        for name in reversed(list(self.procs)):
            self.stop(name)


class TelegramTraffic(threading.Thread):
    """POSTs the sample chat's updates, renumbered and dated now, to the webhook."""

    def __init__(self, url: str, rate: float) -> None:
        super().__init__(daemon=True)
        from lakehouse.sources.telegram_sample import SampleChat

        self.url, self.rate = url, rate
        self.updates = SampleChat(days=120).updates()
        self.stop_event = threading.Event()
        self.acked = 0
        self.refused: Counter[str] = Counter()
        self.messages: set[tuple[int, int]] = set()

    def run(self) -> None:
        session = requests.Session()
        session.headers.update({"X-Telegram-Bot-Api-Secret-Token": SECRET})
        first_id = 500_000_000
        for n, update in enumerate(self.updates):
            if self.stop_event.wait(1 / self.rate):
                return
            now = int(time.time())
            update = {**update, "update_id": first_id + n}
            kind = next(k for k in update if k != "update_id")
            payload = dict(update[kind])
            if "date" in payload:
                payload["date"] = now
            if "edit_date" in payload:
                payload["edit_date"] = now
            update[kind] = payload
            try:
                answer = session.post(self.url, json=update, timeout=30)
            except requests.RequestException as exc:
                self.refused[type(exc).__name__] += 1
                continue
            if answer.status_code != 200:
                self.refused[str(answer.status_code)] += 1
                continue
            self.acked += 1
            if kind in ("message", "edited_message", "channel_post", "edited_channel_post"):
                self.messages.add((payload["chat"]["id"], payload["message_id"]))


def instance_config(template: Path, max_runs: int) -> dict:
    config = yaml.safe_load(template.read_text())
    # No ECS here: runs start on this machine, as `make dev` starts them (forks of a warm run
    # worker, checked by run monitoring).
    config["run_launcher"] = {"module": "lakehouse.run_launcher", "class": "LocalRunLauncher"}
    config["concurrency"]["runs"]["max_concurrent_runs"] = max_runs
    return config


def runs_summary(instance) -> tuple[Counter, Counter, list]:  # noqa: ANN001 (DagsterInstance)
    runs = instance.get_runs()
    by_status = Counter(r.status.value for r in runs)
    by_job = Counter((r.job_name, r.status.value) for r in runs)
    failed = [r for r in runs if r.status.value == "FAILURE"]
    return by_status, by_job, failed


def failure_reason(instance, run_id: str) -> str:  # noqa: ANN001
    from dagster import DagsterEventType

    for entry in instance.all_logs(run_id, of_type={DagsterEventType.STEP_FAILURE,
                                                    DagsterEventType.RUN_FAILURE}):
        event = entry.dagster_event
        data = getattr(event, "event_specific_data", None)
        error = getattr(data, "error", None)
        if error is not None:
            return f"{error.cls_name}: {error.message.strip()[:300]}"
        if event.message:
            return event.message[:300]
    return "(no failure event)"


def unloaded_raw_files() -> dict[str, int]:
    from lakehouse.lake.ledger import Ledger
    from lakehouse.lake.location import Lake
    from lakehouse.lake.rawfiles import list_raw_keys
    from lakehouse.sources import telegram_landing, twitter

    lake = Lake.from_env()
    return {
        "telegram": len(Ledger(lake, "bronze", "telegram_updates").unloaded(
            list_raw_keys(lake, telegram_landing.RAW_PREFIXES))),
        "twitter": len(Ledger(lake, "bronze", "twitter_records").unloaded(
            list_raw_keys(lake, twitter.RAW_PREFIXES))),
    }


def raw_tweet_ids() -> set[str]:
    """Ids of every tweet in the landed raw Twitter files (posts and referenced tweets)."""
    from lakehouse.lake.location import Lake
    from lakehouse.lake.rawfiles import list_raw_keys
    from lakehouse.sources.twitter import RAW_PREFIXES

    lake = Lake.from_env()
    ids: set[str] = set()
    for key in list_raw_keys(lake, RAW_PREFIXES):
        for line in lake.read_bytes(key).splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            data = record.get("data") or []
            for tweet in (data if isinstance(data, list) else [data]):
                ids.add(tweet["id"])
            for tweet in (record.get("includes") or {}).get("tweets", []):
                ids.add(tweet["id"])
    return ids


def table_report() -> list[tuple[str, int, int, int]]:
    from deltalake import DeltaTable

    from lakehouse.lake.delta import row_count
    from lakehouse.lake.location import LAYERS, Lake
    from lakehouse.lake.maintenance import active_files

    lake = Lake.from_env()
    rows = []
    for layer in LAYERS:
        if layer == "raw":
            continue
        for table in lake.delta_tables(layer):
            delta = DeltaTable(lake.table_uri(layer, table),
                               storage_options=lake.storage_options or None)
            files = active_files(delta)
            rows.append((f"{layer}/{table}", files.files, files.bytes, row_count(delta)))
    return rows


def silver_rows(layer_table: str, rows: list[tuple[str, int, int, int]]) -> int:
    return next((r[3] for r in rows if r[0] == layer_table), 0)


def drain(instance, limit_s: float) -> None:  # noqa: ANN001
    """Wait until every landed file is loaded and no run is queued or running (and no new run
    was created for a minute: gold follows silver through a sensor), or ``limit_s``."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        runs = instance.get_runs()
        busy = sum(1 for r in runs if r.status.value in IN_FLIGHT)
        newest = max((r.create_timestamp.timestamp() for r in instance.get_run_records()),
                     default=0.0)
        quiet = time.time() - newest
        unloaded = unloaded_raw_files()
        log(f"drain: {busy} runs queued or running, unloaded raw files {unloaded}, "
            f"last run created {quiet:.0f} s ago")
        if not busy and not any(unloaded.values()) and quiet > 75:
            return
        time.sleep(15)
    log("drain: time is up")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="Traffic time (default 10).")
    parser.add_argument("--drain-minutes", type=float, default=8.0,
                        help="After the traffic, at most this long to load what landed.")
    parser.add_argument("--max-concurrent-runs", type=int, default=4)
    parser.add_argument("--telegram-rate", type=float, default=2.0,
                        help="Webhook updates per second.")
    parser.add_argument("--stream-rate", type=float, default=2.0,
                        help="Sample stream tweets per second.")
    parser.add_argument("--stream-max-age", type=float, default=60.0,
                        help="The stream seals a raw batch this many seconds old.")
    parser.add_argument("--keep", action="store_true",
                        help="Keep the temporary folder (logs, DAGSTER_HOME) at the end.")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="lakehouse-soak-"))
    pg, procs = Postgres(), Processes(folder)
    s3_port, web_port, hook_port = free_port(), free_port(), free_port()
    bucket = f"soak-{uuid.uuid4().hex[:8]}"
    home = folder / "dagster_home"
    env = {k: v for k, v in os.environ.items()
           if k not in ("TELEGRAM_BOT_TOKEN", "TWITTER_BEARER_TOKEN", "TELEGRAM_CHAT_IDS",
                        "TMDB_API_KEY", "TMDB_READ_ACCESS_TOKEN")}
    env.update({
        "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}".rstrip(os.pathsep),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(pg.port),
        "DAGSTER_PG_USER": "postgres", "DAGSTER_PG_PASSWORD": "trust",
        "DAGSTER_PG_DB": "dagster",
        "LAKEHOUSE_ROOT": f"s3://{bucket}/lake",
        "LAKEHOUSE_DUCKDB_PATH": str(folder / "gold.duckdb"),
        "LAKEHOUSE_DROP_DIR": str(folder / "drop"),
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{s3_port}", "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "soak", "AWS_SECRET_ACCESS_KEY": "soak",
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "TELEGRAM_MODE": "webhook", "TELEGRAM_WEBHOOK_SECRET": SECRET,
    })
    os.environ.update({k: env[k] for k in env if k.startswith(("AWS_", "LAKEHOUSE_",
                                                                "DAGSTER_", "TELEGRAM_"))})
    for name in ("TELEGRAM_BOT_TOKEN", "TWITTER_BEARER_TOKEN", "TELEGRAM_CHAT_IDS"):
        os.environ.pop(name, None)
    (folder / "drop").mkdir()
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config(
        REPO / "deploy/dagster-production.yaml", args.max_concurrent_runs)))
    started = time.monotonic()
    traffic: TelegramTraffic | None = None
    try:
        log(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on "
            f"{os.cpu_count()} CPUs; folder {folder}")
        pg.start()
        log(f"postgres on 127.0.0.1:{pg.port} (pid {pg.pid})")
        procs.start("moto_server", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p",
                                    str(s3_port)], env)
        wait_for_http(env["AWS_ENDPOINT_URL"])
        import boto3

        boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"],
                     region_name="us-east-1").create_bucket(Bucket=bucket)
        log(f"moto S3 on 127.0.0.1:{s3_port}, lake {env['LAKEHOUSE_ROOT']}")
        procs.start("dagster-webserver", [str(BIN / "dagster-webserver"), "-h", "127.0.0.1",
                                          "-p", str(web_port), "-w", "workspace.yaml"], env)
        procs.start("dagster-daemon", [str(BIN / "dagster-daemon"), "run", "-w",
                                       "workspace.yaml"], env)
        procs.start("telegram-webhook", [str(BIN / "lakehouse"), "telegram", "webhook",
                                         "--port", str(hook_port), "--spool-dir",
                                         str(folder / "spool/telegram"),
                                         "--segment-seconds", "60"], env)
        procs.start("twitter-stream", [str(BIN / "lakehouse"), "twitter", "stream",
                                       "--spool", str(folder / "spool/twitter"),
                                       "--max-age", str(args.stream_max_age),
                                       "--sample-rate", str(args.stream_rate)], env)
        wait_for_http(f"http://127.0.0.1:{hook_port}/healthz")
        wait_for_http(f"http://127.0.0.1:{web_port}/server_info", timeout=600)
        log(f"webserver on http://127.0.0.1:{web_port}; daemon, webhook (:{hook_port}) and "
            f"stream running; traffic for {args.minutes:g} min")
        traffic = TelegramTraffic(f"http://127.0.0.1:{hook_port}{WEBHOOK_PATH}",
                                  args.telegram_rate)
        traffic.start()
        traffic_start = time.monotonic()

        import dagster as dg

        instance = dg.DagsterInstance.from_config(str(home))
        while (left := args.minutes * 60 - (time.monotonic() - traffic_start)) > 0:
            time.sleep(min(60.0, left))
            by_status, _, _ = runs_summary(instance)
            log(f"{traffic.acked} updates acknowledged; runs {dict(by_status)}")
        traffic.stop_event.set()
        traffic.join(timeout=60)
        # SIGTERM: both seal their open batch into the lake before exiting.
        codes = {name: procs.stop(name) for name in ("telegram-webhook", "twitter-stream")}
        log(f"traffic stopped (exit codes {codes}); draining")
        drain(instance, args.drain_minutes * 60)
        procs.sample_once()

        by_status, by_job, failed = runs_summary(instance)
        tables = table_report()
        tweets_sent = raw_tweet_ids()
        left_unloaded = unloaded_raw_files()
        print()
        print(f"SOAK REPORT: {args.minutes:g} min of traffic, "
              f"{(time.monotonic() - started) / 60:.1f} min in all; load average now "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
        print("instance: deploy/dagster-production.yaml on PostgreSQL 15, with the local run "
              "launcher (warm run worker; no ECS here) and max_concurrent_runs "
              f"{args.max_concurrent_runs}")
        started_runs = sum(n for s, n in by_status.items() if s not in ("QUEUED", "NOT_STARTED"))
        print(f"runs: {sum(by_status.values())} created, {started_runs} started, "
              f"{by_status.get('SUCCESS', 0)} succeeded, {by_status.get('FAILURE', 0)} failed, "
              f"{by_status.get('QUEUED', 0)} queued left, "
              f"{sum(by_status.get(s, 0) for s in IN_FLIGHT if s != 'QUEUED')} still running")
        for (job, status), n in sorted(by_job.items()):
            print(f"    {job:<34}{status:<10}{n:>5}")
        for run in failed[:5]:
            print(f"    failed {run.job_name} {run.run_id[:8]}: "
                  f"{failure_reason(instance, run.run_id)}")
        print(f"telegram: {traffic.acked} updates acknowledged by the webhook "
              f"(refused: {dict(traffic.refused) or 'none'}), {len(traffic.messages)} "
              f"distinct messages sent; silver/telegram_messages rows: "
              f"{silver_rows('silver/telegram_messages', tables)}")
        print(f"twitter: {len(tweets_sent)} distinct tweet ids in the landed raw files (stream "
              f"+ search, posts and referenced tweets); silver/twitter_tweets rows: "
              f"{silver_rows('silver/twitter_tweets', tables)}")
        print(f"raw files not loaded at the end: {left_unloaded}")
        print("tables (active files, MiB, rows):")
        for name, files, size, rows in tables:
            print(f"    {name:<38}{files:>6}{size / 2**20:>10.2f}{rows:>10}")
        print("peak memory (RSS sampled every 3 s; the process / with its children):")
        for name in procs.procs:
            print(f"    {name:<20}{procs.peak_rss[name] / 2**20:>8.0f} MiB"
                  f"{procs.peak_tree_rss[name] / 2**20:>8.0f} MiB")
        print(f"    largest run (or dbt) process {procs.peak_run_rss / 2**20:.0f} MiB")
        instance.dispose()
        return 0 if not by_status.get("FAILURE") and not any(left_unloaded.values()) else 1
    finally:
        if traffic is not None:
            traffic.stop_event.set()
        procs.stop_all()
        pg.stop()
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
