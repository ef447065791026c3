"""SIGKILL a raw-file bronze load at random moments, again and again, then let it finish: every
record of the landed files is in bronze exactly once, and the ledger holds every file."""

import json
import multiprocessing
import os
import random
import signal
import time
from datetime import UTC, datetime

import polars as pl

from lakehouse.lake.delta import scan
from lakehouse.lake.location import Lake
from lakehouse.lake.rawfiles import list_raw_keys
from lakehouse.load.telegram import bronze_ledger
from lakehouse.sources.telegram_landing import RAW_PREFIXES, WEBHOOK_PREFIX

FILES, LINES, KILLS = 24, 150, 8


def _load_unloaded(root: str, ready) -> None:
    """What the sensor's run does: load the landed files the ledger does not hold. Chunks of
    two files make many commits (bronze, quarantine, ledger), so kills land among them."""
    from lakehouse.load import telegram as tables

    tables.BRONZE_COMMIT_FILES = 2
    the_lake = Lake.from_env(root)
    keys = tables.bronze_ledger(the_lake).unloaded(list_raw_keys(the_lake, RAW_PREFIXES))
    ready.set()
    tables.load_bronze(the_lake, keys)


def land(lake: Lake) -> int:
    now = datetime.now(UTC)
    update_id = 0
    for f in range(FILES):
        lines = []
        for _ in range(LINES):
            update_id += 1
            lines.append(json.dumps({"update_id": update_id, "message": {
                "message_id": update_id, "date": int(now.timestamp()) - f * 3600,
                "chat": {"id": -5, "type": "group"}, "text": f"m{update_id}"}}))
        lines.append("{broken")  # one quarantined record per file
        key = f"{WEBHOOK_PREFIX}/{now:%Y/%m/%d}/{now:%Y%m%d}T{f:06d}000000Z-1-{f:04d}.ndjson"
        lake.write_bytes(key, "\n".join(lines).encode())
    return update_id


def load(ctx, root: str, kill_after: float | None) -> int:
    """One load in its own process (forked from a server that imported everything once), killed
    with SIGKILL ``kill_after`` seconds after it listed its files; returns its exit code."""
    ready = ctx.Event()
    proc = ctx.Process(target=_load_unloaded, args=(root, ready))
    proc.start()
    try:
        assert ready.wait(300), "the load did not start"
        if kill_after is not None:
            time.sleep(kill_after)
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGKILL)
        proc.join(120)
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join(10)
    return proc.exitcode


def test_killed_loads_leave_every_record_in_bronze_exactly_once(lake: Lake) -> None:
    updates = land(lake)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__, "lakehouse.load.telegram"])
    rng = random.Random(7)
    killed = [load(ctx, lake.root, kill_after=rng.uniform(0.0, 1.5)) for _ in range(KILLS)]
    assert -signal.SIGKILL in killed  # at least some loads really died mid-way
    assert load(ctx, lake.root, kill_after=None) == 0

    bronze = scan(lake, lake.table_uri("bronze", "telegram_updates")).collect()
    assert bronze.height == updates
    assert bronze["update_id"].sort().to_list() == list(range(1, updates + 1))
    quarantine = scan(lake, lake.table_uri("quarantine", "telegram_quarantine")).collect()
    assert quarantine.height == FILES
    assert quarantine.group_by("_source_file").len()["len"].max() == 1
    keys = list_raw_keys(lake, RAW_PREFIXES)
    assert bronze_ledger(lake).unloaded(keys) == []
    assert set(bronze["_source_file"]) == set(keys)
    assert bronze.filter(pl.col("update_id").is_duplicated()).is_empty()
