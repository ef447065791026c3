"""The raw-file machinery of every domain, on the Dagster side: the run config of the loads
that read raw files, which files a load takes, and the one sensor factory that asks for them.

What is loaded is decided by the table's ledger (``lakehouse.lake.ledger``), never by key order:
each tick lists the landed keys, subtracts the ledger and the files of runs still in flight, and
requests runs for the rest with a ``run_key`` naming exactly those files. So a late,
out-of-order or concurrently landed file is requested until it is loaded, and once; and a lake
whose files are all loaded (after ``make demo``) gets no run at all.
"""

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
import polars as pl

from lakehouse.defs.specs import delta_table_spec
from lakehouse.lake.delta import open_table, scan
from lakehouse.lake.ledger import Ledger
from lakehouse.lake.location import Lake
from lakehouse.lake.rawfiles import list_raw_keys

# A landing zone of up to FULL_SCAN_MAX_KEYS keys is listed whole on every tick. A bigger one
# is listed whole once per FULL_SCAN_SECONDS (and on the first tick), and in between only its
# day folders of the last LOOKBACK_DAYS days: a file landed into an older day folder (a segment
# stranded for weeks, a file copied in by hand) is then found within that period.
FULL_SCAN_MAX_KEYS = 20_000
FULL_SCAN_SECONDS = 3600
LOOKBACK_DAYS = 3
# A request whose run the instance does not show yet (the daemon creates it after the tick)
# keeps its files out of new requests for this long.
REQUEST_TTL_SECONDS = 900
# A batch whose run failed (storage down, the worker killed) is asked for again, with a new
# run_key, this many times; then it waits for a person (the skip reason names it).
RETRIES = 2
_IN_FLIGHT = (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
              dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
              dg.DagsterRunStatus.MANAGED, dg.DagsterRunStatus.CANCELING)


class RawFilesConfig(dg.Config):
    files: list[str] = []
    """Raw keys to (re)load. Empty: the landed files this table's ledger does not hold yet
    (what a Materialize click or a schedule wants); sensors pass the files they found."""
    reload_all: bool = False
    """With no ``files``: reload every landed file (idempotent; reads the whole landing zone,
    a repair tool)."""


def raw_keys_to_load(lake: Lake, config: RawFilesConfig, prefixes: Sequence[str],
                     ledger: Ledger) -> list[str]:
    if config.files:
        return sorted(set(config.files))
    landed = list_raw_keys(lake, prefixes)
    return landed if config.reload_all else ledger.unloaded(landed)


FILE_ACCOUNTING = "file_accounting"


def bronze_load_specs(bronze: dg.AssetKey, quarantine: dg.AssetKey, group: str,
                      raw: Sequence[dg.AssetKey], *, bronze_description: str,
                      quarantine_description: str) -> list[dg.AssetSpec]:
    """The two tables a load of raw files writes, both read from the ``raw`` assets."""
    return [delta_table_spec(bronze, group, deps=raw, description=bronze_description),
            delta_table_spec(quarantine, group, deps=raw, description=quarantine_description)]


def file_accounting_spec(bronze: dg.AssetKey) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        FILE_ACCOUNTING, asset=bronze,
        description="Every record of the loaded raw files is in bronze or in quarantine (or set "
                    "aside on purpose, e.g. by an allow-list): rows + quarantined = records, "
                    "counted in the tables as written.")


def file_accounting(lake: Lake, bronze: dg.AssetKey, quarantine: dg.AssetKey,
                    files: Sequence[str], records: int, set_aside: int = 0) -> dg.AssetCheckResult:
    """The ``file_accounting`` check of a bronze load: the rows of ``files`` in the bronze and
    quarantine tables (keys ``[layer, table]``) against the ``records`` the load read."""
    def rows_of(key: dg.AssetKey) -> int:
        uri = lake.table_uri(*key.path)
        if not files or (table := open_table(lake, uri)) is None:
            return 0
        return scan(lake, uri, table).filter(pl.col("_source_file").is_in(list(files))) \
            .select(pl.len()).collect().item()

    bronze_rows, quarantined = rows_of(bronze), rows_of(quarantine)
    return dg.AssetCheckResult(
        asset_key=bronze, check_name=FILE_ACCOUNTING,
        passed=bronze_rows + quarantined + set_aside == records,
        metadata={"files": len(files), "records": records, "bronze_rows": bronze_rows,
                  "quarantined": quarantined, "set_aside": set_aside})


def files_run_key(files: Sequence[str]) -> str:
    """The identity of a set of files: the key of a single file, else a hash of the sorted set."""
    unique = sorted(set(files))
    if len(unique) == 1:
        return unique[0]
    digest = hashlib.sha256("\n".join(unique).encode()).hexdigest()[:24]
    return f"files:{len(unique)}:{digest}"


def files_request(ops: Sequence[str]) -> Callable[[str, list[str]], dg.RunRequest]:
    """Requests that pass the files to each of ``ops`` as ``RawFilesConfig.files``."""
    def request(run_key: str, files: list[str]) -> dg.RunRequest:
        config = {"config": {"files": files}}
        return dg.RunRequest(run_key=run_key, run_config=dg.RunConfig(ops=dict.fromkeys(ops, config)),
                             tags={"lakehouse/raw_files": str(len(files))})
    return request


def raw_landed_keys(prefixes: Sequence[str]) -> Callable[..., list[str]]:
    """The lister of raw keys below ``prefixes`` (for ``raw_file_sensor``)."""
    def landed(context: dg.SensorEvaluationContext, lake: Lake, since: date | None) -> list[str]:
        return list_raw_keys(lake, prefixes, since)
    return landed


def landed_events(lake: Lake, files: Sequence[str],
                  assets: Mapping[str, dg.AssetKey]) -> list[dg.AssetMaterialization]:
    """A materialization of each raw asset in ``assets`` (by key prefix) that ``files`` hold."""
    events = []
    for prefix, asset in assets.items():
        landed = sorted(f for f in files if f.startswith(prefix + "/"))
        if landed:
            events.append(dg.AssetMaterialization(
                asset_key=asset, description=f"{len(landed)} files landed",
                metadata={"files": len(landed), "dagster/uri": lake.uri(prefix),
                          "first_file": landed[0], "last_file": landed[-1]}))
    return events


def _attempt_keys(base: str) -> list[str]:
    return [base, *(f"{base}#retry{n}" for n in range(1, RETRIES + 1))]


def _latest_runs(instance: dg.DagsterInstance, sensor: str,
                 run_keys: list[str]) -> dict[str, dg.DagsterRun]:
    """The newest run of this sensor for each of ``run_keys`` (one query)."""
    if not run_keys:
        return {}
    runs = instance.get_runs(filters=dg.RunsFilter(
        tags={"dagster/sensor_name": sensor, "dagster/run_key": sorted(set(run_keys))}))
    latest: dict[str, dg.DagsterRun] = {}
    for run in runs:  # newest first
        latest.setdefault(run.tags.get("dagster/run_key", ""), run)
    return latest


def _still_in_flight(instance: dg.DagsterInstance, sensor: str,
                     requested: dict[str, dict], now: float) -> dict[str, dict]:
    """The requests of earlier ticks whose run is queued or running, or not created yet."""
    latest = _latest_runs(instance, sensor, list(requested))
    kept = {}
    for run_key, entry in requested.items():
        run = latest.get(run_key)
        if run is None:
            if now - entry.get("at", 0) < REQUEST_TTL_SECONDS:
                kept[run_key] = entry
        elif run.status in _IN_FLIGHT:
            kept[run_key] = entry
    return kept


def raw_file_sensor(*, name: str, job: dg.JobDefinition | Any, ledger: tuple[str, str],
                    list_landed: Callable[[dg.SensorEvaluationContext, Lake, date | None],
                                          list[str]],
                    request_for: Callable[[str, list[str]], dg.RunRequest],
                    description: str, files_per_run: int = 1, max_runs_per_tick: int = 100,
                    minimum_interval_seconds: int = 30,
                    required_resource_keys: frozenset[str] = frozenset({"lake"}),
                    extra_requests: Callable[[dg.SensorEvaluationContext, list[dg.RunRequest]],
                                             dict] | None = None,
                    landed_outside: Mapping[str, dg.AssetKey] | None = None,
                    ) -> dg.SensorDefinition:
    """The sensor that loads landed files not in ``ledger`` (``(layer, table)``) exactly once.

    ``list_landed(context, lake, since)`` lists what has landed (every key when ``since`` is
    None), ``request_for(run_key, files)`` builds the run of one batch of at most
    ``files_per_run`` files. ``extra_requests`` may add fields to the ``SensorResult`` (for
    example dynamic partition requests). The cursor only remembers when the last full listing
    ran and which requests are still in flight; losing it costs one full listing, never a file.

    ``landed_outside`` maps the key prefixes that processes outside Dagster land into (a webhook,
    a stream) to their raw asset: the files found there are reported as a materialization of
    that asset, so its page shows when files landed and which.
    """

    @dg.sensor(name=name, job=job, minimum_interval_seconds=minimum_interval_seconds,
               default_status=dg.DefaultSensorStatus.RUNNING, description=description,
               required_resource_keys=set(required_resource_keys))
    def _sensor(context: dg.SensorEvaluationContext, **_resources: Any) -> dg.SensorResult:
        # Called directly (tests), Dagster passes the required resources as keywords too.
        lake: Lake = context.resources.lake.lake()
        state = json.loads(context.cursor) if context.cursor else {}
        now = time.time()
        full = (now - float(state.get("full_scan_at", 0)) >= FULL_SCAN_SECONDS
                or int(state.get("landed_keys", 0)) <= FULL_SCAN_MAX_KEYS)
        since = None if full else datetime.now(UTC).date() - timedelta(days=LOOKBACK_DAYS)
        landed = list_landed(context, lake, since)
        unloaded = Ledger(lake, *ledger).unloaded(landed) if landed else []
        in_flight = _still_in_flight(context.instance, name, state.get("requested", {}), now)
        busy = {f for entry in in_flight.values() for f in entry["files"]}
        todo = [k for k in unloaded if k not in busy]
        batches = [todo[i:i + files_per_run]
                   for i in range(0, len(todo), files_per_run)][:max_runs_per_tick]
        earlier = _latest_runs(context.instance, name, [
            k for files in batches for k in _attempt_keys(files_run_key(files))])
        requests, given_up = [], []
        for files in batches:
            keys = _attempt_keys(files_run_key(files))
            if any(k in earlier and earlier[k].status in _IN_FLIGHT for k in keys):
                continue
            run_key = next((k for k in keys if k not in earlier), None)
            if run_key is None:  # every attempt failed: a person looks (see the runs)
                given_up.append(keys[-1])
                continue
            requests.append(request_for(run_key, files))
            in_flight[run_key] = {"files": files, "at": now}
        cursor = json.dumps({
            "full_scan_at": now if full else state.get("full_scan_at", 0),
            "landed_keys": len(landed) if full else state.get("landed_keys", 0),
            "requested": in_flight}, sort_keys=True)
        if given_up:
            context.log.warning(f"{len(given_up)} batches of files failed {RETRIES + 1} runs and "
                                f"are not asked for again: {', '.join(given_up[:5])}")
        if not requests:
            waiting = f"; {len(busy)} in runs not finished yet" if busy else ""
            failed = f"; {len(given_up)} batches failed every attempt" if given_up else ""
            return dg.SensorResult(skip_reason=f"every landed file is loaded{waiting}{failed}",
                                   cursor=cursor)
        extra = extra_requests(context, requests) if extra_requests else {}
        found = [f for files in batches[:max_runs_per_tick] for f in files]
        events = landed_events(lake, found, landed_outside or {})
        return dg.SensorResult(run_requests=requests, cursor=cursor, asset_events=events, **extra)

    return _sensor
