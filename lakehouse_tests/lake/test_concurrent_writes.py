"""Two processes writing a table that does not exist yet: each write mode ends with every row
once, locally and on S3 (moto's server, conditional put)."""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from lakehouse.lake.delta import scan
from lakehouse.lake.location import Lake

ROWS = 2_000
MODES = ("replace_sources", "replace_partitions", "merge")
# Each worker imports once, then for every trial waits at a barrier (files in a shared folder)
# so that both write the fresh table at the same instant.
WORKER = textwrap.dedent("""
    import sys, time
    from datetime import date
    from pathlib import Path
    import polars as pl
    from lakehouse.lake.delta import append_replacing_sources, merge_on_keys, replace_partitions
    from lakehouse.lake.location import Lake

    barrier, name, rows, trials = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    lake = Lake.from_env()
    frame = pl.DataFrame({
        "key": list(range(rows)),
        "date": [date(2026, 11, 1 + i % 3) for i in range(rows)],
        "_source_file": ["raw/x/2026/11/01/a.ndjson"] * rows,
    })
    for trial in trials:
        mode, table = trial.split(":")
        uri = lake.table_uri("bronze", table)
        (barrier / f"{table}.{name}.ready").touch()
        while not (barrier / f"{table}.go").exists():
            time.sleep(0.001)
        if mode == "replace_sources":
            append_replacing_sources(lake, uri, frame, ["raw/x/2026/11/01/a.ndjson"],
                                     partition_by=["date"])
        elif mode == "replace_partitions":
            replace_partitions(lake, uri, frame, "date", sorted(set(frame["date"])))
        else:
            merge_on_keys(lake, uri, frame, ["date", "key"], partition_by=["date"])
        (barrier / f"{table}.{name}.done").touch()
""")


def race(lake: Lake, barrier: Path, trials: list[tuple[str, str]]) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    args = [f"{mode}:{table}" for mode, table in trials]
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(barrier), name, str(ROWS), *args],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in ("a", "b")]
    try:
        for _, table in trials:
            for step in ("ready", "done"):
                deadline = time.monotonic() + 60
                while not all((barrier / f"{table}.{n}.{step}").exists() for n in ("a", "b")):
                    failed = [p for p in procs if p.poll() not in (None, 0)]
                    assert not failed, failed[0].communicate()[1][-3000:]
                    assert time.monotonic() < deadline, f"{table}: workers stuck before {step}"
                    time.sleep(0.005)
                if step == "ready":
                    (barrier / f"{table}.go").touch()
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err[-3000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()


def assert_each_row_once(lake: Lake, barrier: Path, trials: list[tuple[str, str]]) -> None:
    barrier.mkdir()
    race(lake, barrier, trials)
    for mode, table in trials:
        rows = scan(lake, lake.table_uri("bronze", table)).collect()
        assert rows.height == ROWS, f"{mode} {table}: {rows.height} rows for {ROWS}"
        assert rows["key"].n_unique() == ROWS


def test_racing_creators_never_double_a_local_table(lake: Lake, tmp_path: Path) -> None:
    trials = [(mode, f"race_{i}") for i, mode in enumerate(MODES * 2)]
    assert_each_row_once(lake, tmp_path / "barrier", trials)


def test_racing_creators_never_double_an_s3_table(s3_lake: Lake, tmp_path: Path) -> None:
    trials = [(mode, f"race_{i}") for i, mode in enumerate(MODES)]
    assert_each_row_once(s3_lake, tmp_path / "barrier", trials)
