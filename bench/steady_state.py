"""Benchmark: does a 5-minute Twitter batch cost the same after a year of them? (steady state)

N batches (default 1,000, about 3.5 days of 5-minute batches) of the filtered stream's raw
NDJSON, in the real v2 format (``lakehouse.sources.twitter_sample``: retweets, edits, media,
places, matching rules), on a moving clock so days roll over. Each batch is landed as one raw
file and loaded the way ``twitter_files_job`` loads it when the sensor asks for that file:
the ``twitter_bronze`` and ``twitter_silver`` assets materialised in process (a fresh ephemeral
instance per batch, so Dagster's own storage does not grow) on a local lake. Every
``--upkeep-every`` batches (72: six simulated hours, as ``lake_maintenance_schedule``) the upkeep runs
(``lakehouse.lake.maintenance.maintain_table`` on every table, as ``lake_maintenance_job``
does) with a short retention for the files (``--retention-hours``, default 0: the bench has
no readers). The tables' logs are kept as long as in production, in batches: the default
day-long log retention (``lakehouse.lake.delta.LOG_RETENTION_HOURS``) holds the last 288
5-minute batches' commits, and the bench, whose batches follow each other in seconds, keeps the
same number (``--log-retention-batches``): each upkeep sets the retention to that many batches
at the bench's own pace so far. A log is listed whole by every open of its table on a local
lake, so its length is part of what a batch costs (``lakehouse.lake.maintenance``).

It prints, at the report batches (10, 100, 500, 1,000 and the last): the batch's wall time,
the mean over the 5 batches ending there (one batch is noisy on a shared machine) in wall and
CPU seconds (CPU time moves less with the machine's load), the time of
the bronze and silver steps (from the run's event log), and each table's active files and
bytes; at the end, the ratio late/early (the means of the last and the 10th batch's windows,
target <= 1.2), the bronze and silver steps' means over the same windows, and the largest
active file count of any table (target <= 200).

The sequential windows swing up to 2x with a shared machine's load (the batches of a window
run within seconds of each other, the windows minutes apart), so they are not the verdict. The
verdict is a replay: the bench keeps copies of the lake as it was just before batch 10 and just
before the last batch (the landed raw file of each included), and at the end loads those two
batches again, alternately, each on a fresh copy, ``--replays`` times each (default 7), and
prints the medians of their wall and CPU seconds and the ratios (target <= 1.2 in both). Both
batches then run under the same load. ``--keep-replays DIR`` keeps the two copies, and
``--replay-from DIR`` replays them again (for example with other code) without the run.

Usage: python bench/steady_state.py [--batches 1000] [--tweets-per-batch 300]
                                    [--upkeep-every 72] [--retention-hours 0]
                                    [--log-retention-batches 288] [--root DIR]
                                    [--replays 7] [--keep-replays DIR] [--replay-from DIR]
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

BATCH_SECONDS = 300
BATCHES_PER_DAY = 86_400 // BATCH_SECONDS
WINDOW = 5
TARGET_RATIO = 1.2
TARGET_FILES = 200


def day_batches(day: date, per_batch: int, seed: int) -> list[list[bytes]]:
    """The stream lines of one day, cut into its 288 five-minute batches (by created_at)."""
    from lakehouse.sources.twitter_sample import SAMPLE_RULES, SampleTweets, envelope

    start_ms = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    batches: list[list[bytes]] = [[] for _ in range(BATCHES_PER_DAY)]
    tweets = SampleTweets(days=1, end_date=day, per_day=per_batch * BATCHES_PER_DAY, seed=seed)
    for item in tweets.generate():
        moment = int(datetime.fromisoformat(item.tweet["created_at"]).timestamp() * 1000)
        index = min((moment - start_ms) // (BATCH_SECONDS * 1000), BATCHES_PER_DAY - 1)
        # A stream line as the filtered stream sends it (see SampleTwitterApi.stream_lines).
        line = envelope([item]) | {"data": item.tweet}
        rules = SAMPLE_RULES[:2] if item.tweet["lang"] == "pt" else SAMPLE_RULES[:1]
        line["matching_rules"] = [{"id": r["id"], "tag": r["tag"]} for r in rules]
        batches[index].append(json.dumps(line, ensure_ascii=False,
                                         separators=(",", ":")).encode())
    return batches


def raw_batches(first_day: date, count: int, per_batch: int) -> Iterator[tuple[datetime, bytes]]:
    """(the batch's closing moment, its NDJSON bytes), day after day, generated a day at a time."""
    n, day_index = 0, 0
    while n < count:
        day = first_day + timedelta(days=day_index)
        for index, lines in enumerate(day_batches(day, per_batch, seed=1000 + day_index)):
            if n == count:
                return
            closed = (datetime(day.year, day.month, day.day, tzinfo=UTC)
                      + timedelta(seconds=(index + 1) * BATCH_SECONDS))
            yield closed, b"\n".join(lines) + b"\n"
            n += 1
        day_index += 1


def load_file(root: str, key: str) -> dict[str, float]:
    """One ``twitter_files_job`` run for one raw file: bronze then silver, in process."""
    import dagster as dg

    from lakehouse.defs.twitter.assets import twitter_bronze, twitter_silver
    from lakehouse.lake.resource import LakeResource

    config = {"config": {"files": [key]}}
    result = dg.materialize([twitter_bronze, twitter_silver],
                            resources={"lake": LakeResource(root=root)},
                            run_config={"ops": {"twitter_bronze": config,
                                                "twitter_silver": config},
                                        "loggers": {"console": {"config": {
                                            "log_level": "WARNING"}}}})
    if not result.success:
        raise RuntimeError(f"the run for {key} failed")
    steps = {}
    for event in result.all_events:
        if event.event_type_value == "STEP_SUCCESS":
            steps[event.step_key] = event.event_specific_data.duration_ms / 1000
    return steps


def table_files(root: str) -> dict[str, tuple[int, int]]:
    """Active files and bytes of every Delta table (the ledgers too), by ``layer/table``."""
    from deltalake import DeltaTable

    from lakehouse.lake.location import LAYERS, Lake
    from lakehouse.lake.maintenance import active_files

    lake = Lake.from_env(root)
    found: dict[str, tuple[int, int]] = {}
    for layer in [*(x for x in LAYERS if x != "raw"), "_ledger/bronze"]:
        for table in lake.delta_tables(layer):
            files = active_files(DeltaTable(lake.uri(f"{layer}/{table}")))
            found[f"{layer}/{table}"] = (files.files, files.bytes)
    return found


def upkeep(root: str, retention_hours: int,
           log_retention_hours: float) -> tuple[float, dict[str, int], dict[str, int]]:
    """The nightly upkeep on every table: (seconds, files before and after by table)."""
    from lakehouse.defs.maintenance.jobs import TABLE_LAYERS
    from lakehouse.lake.location import Lake
    from lakehouse.lake.maintenance import maintain_table

    lake = Lake.from_env(root)
    start, before, after = time.perf_counter(), {}, {}
    for layer in TABLE_LAYERS:
        for table in lake.delta_tables(layer):
            report = maintain_table(lake, lake.table_uri(layer, table),
                                    retention_hours=retention_hours,
                                    log_retention_hours=log_retention_hours)
            before[f"{layer}/{table}"] = report.before.files
            after[f"{layer}/{table}"] = report.after.files
    return time.perf_counter() - start, before, after


def snapshot(root: str, dest: Path, key: str, data: bytes, batch: int) -> None:
    """A copy of the lake at ``root`` as a batch's load finds it: every table and ledger (file
    times kept: the log's cleanup goes by them), and of the landing zone only the batch's own
    raw file (the load reads no other)."""
    from lakehouse.lake.location import Lake

    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(root, dest / "lake", ignore=lambda folder, _names: (
        {"raw"} if Path(folder) == Path(root) else set()))
    Lake.from_env(str(dest / "lake")).write_bytes(key, data)
    (dest / "batch.json").write_text(json.dumps({"batch": batch, "key": key,
                                                 "taken": time.time()}))


def replay_once(saved: Path, scratch: Path) -> tuple[float, float]:
    """Load the saved batch again on a fresh copy of its lake: (wall, CPU seconds).

    The copy's files are made younger by the time since the copy was taken: a writer's
    checkpoint deletes the log's commits older than the retention by their files' times, so
    an old copy would otherwise have its whole log expired and deleted by the replayed batch
    (thousands of files, which the batch did not delete when it ran in sequence)."""
    lake = scratch / "lake"
    if lake.exists():
        shutil.rmtree(lake)
    batch = json.loads((saved / "batch.json").read_text())
    age_ns = int((time.time() - batch["taken"]) * 1e9)

    def copy_younger(src: str, dst: str) -> None:
        shutil.copy2(src, dst)
        stat = os.stat(src)
        os.utime(dst, ns=(stat.st_atime_ns + age_ns, stat.st_mtime_ns + age_ns))
    shutil.copytree(saved / "lake", lake, copy_function=copy_younger)
    key = batch["key"]
    start, cpu_start = time.perf_counter(), time.process_time()
    load_file(str(lake), key)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    shutil.rmtree(lake)
    return wall, cpu


def replay(early: Path, late: Path, times: int, scratch: Path, warm_up: bool) -> bool:
    """Replay the two saved batches alternately (the order swapped every round, so a drift of
    the machine's load weighs on both alike), ``times`` each; print the medians and the
    verdict. ``warm_up``: replay the early batch once first, uncounted (a fresh process pays
    its first run's imports and caches there)."""
    batches = {name: json.loads((saved / "batch.json").read_text())["batch"]
               for name, saved in (("early", early), ("late", late))}
    if warm_up:
        replay_once(early, scratch)
    walls: dict[str, list[float]] = {"early": [], "late": []}
    cpus: dict[str, list[float]] = {"early": [], "late": []}
    for n in range(times):
        order = [("early", early), ("late", late)]
        for name, saved in order if n % 2 == 0 else order[::-1]:
            wall, cpu = replay_once(saved, scratch)
            walls[name].append(wall)
            cpus[name].append(cpu)
    wall = {name: statistics.median(v) for name, v in walls.items()}
    cpu = {name: statistics.median(v) for name, v in cpus.items()}
    wall_ratio, cpu_ratio = wall["late"] / wall["early"], cpu["late"] / cpu["early"]
    met = wall_ratio <= TARGET_RATIO and cpu_ratio <= TARGET_RATIO
    for name in ("early", "late"):
        print(f"replayed batch {batches[name]:>5} on copies of its lake, {times} times "
              f"alternately: median {wall[name]:.2f} s wall, {cpu[name]:.2f} s CPU (CPU "
              f"{min(cpus[name]):.2f}-{max(cpus[name]):.2f} s)")
    print(f"ratio batch {batches['late']} / batch {batches['early']} (medians of the "
          f"replays): {wall_ratio:.2f} in wall time, {cpu_ratio:.2f} in CPU time (target <= "
          f"{TARGET_RATIO} in both: {'met' if met else 'NOT met'})", flush=True)
    return met


def print_tables(tables: dict[str, tuple[int, int]]) -> None:
    for name, (files, size) in sorted(tables.items()):
        print(f"    {name:<34}{files:>7} files{size / 2**20:>10.2f} MiB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=1000)
    parser.add_argument("--tweets-per-batch", type=int, default=300)
    parser.add_argument("--upkeep-every", type=int, default=BATCHES_PER_DAY // 4,
                        help="Run the table upkeep every this many batches (default 72: six "
                             "hours, as lake_maintenance_schedule; 0: never).")
    parser.add_argument("--retention-hours", type=int, default=0,
                        help="The upkeep's vacuum retention (default 0: no readers here).")
    parser.add_argument("--log-retention-batches", type=int, default=BATCHES_PER_DAY,
                        help="How many batches' commits each table's log keeps (default 288: "
                             "the default day-long log retention at 5-minute batches).")
    parser.add_argument("--first-day", type=date.fromisoformat, default=date(2026, 11, 2))
    parser.add_argument("--report-at", default="10,100,500,1000",
                        help="Batches to print figures at (the last batch always is).")
    parser.add_argument("--root", default=None,
                        help="Lake folder (default: a temporary one, deleted at the end).")
    parser.add_argument("--replays", type=int, default=7,
                        help="Times each of batch 10 and the last batch is replayed on a copy "
                             "of its lake at the end, alternately (the verdict; 0: none).")
    parser.add_argument("--keep-replays", type=Path, default=None,
                        help="Keep the two batches' lake copies in this folder.")
    parser.add_argument("--replay-from", type=Path, default=None,
                        help="Only replay the copies kept by --keep-replays in this folder.")
    args = parser.parse_args()
    if args.replay_from:
        with tempfile.TemporaryDirectory(prefix="steady-replay-") as scratch:
            replay(args.replay_from / "early", args.replay_from / "late",
                   max(args.replays, 1), Path(scratch), warm_up=True)
        return 0
    if args.batches < 10 + 1:
        parser.error("--batches must be more than 10")

    from lakehouse.lake.location import Lake
    from lakehouse.sources.twitter import stream_key

    temp = tempfile.mkdtemp(prefix="steady-state-")
    root = args.root or str(Path(temp) / "lake")
    saved = args.keep_replays or Path(temp) / "replays"
    lake = Lake.from_env(root)
    report_at = {int(b) for b in args.report_at.split(",") if b} | {args.batches}
    walls: list[float] = []
    cpus: list[float] = []  # CPU seconds of all threads: less swayed by a loaded machine
    step_times: dict[str, list[float]] = {"twitter_bronze": [], "twitter_silver": []}
    max_files: dict[str, int] = {}
    print(f"steady state: {args.batches} batches of ~{args.tweets_per_batch} tweets, upkeep "
          f"every {args.upkeep_every} (retention {args.retention_hours} h, log "
          f"{args.log_retention_batches} batches), lake {root}",
          flush=True)
    began = time.perf_counter()
    try:
        for n, (closed, data) in enumerate(
                raw_batches(args.first_day, args.batches, args.tweets_per_batch), start=1):
            opened = closed - timedelta(seconds=BATCH_SECONDS)
            key = stream_key(f"{opened:%Y%m%dT%H%M%S}000000Z-steady-{n:06d}.ndjson", opened)
            lake.write_bytes(key, data)
            if args.replays and n in (10, args.batches):
                snapshot(root, saved / ("early" if n == 10 else "late"), key, data, n)
            start, cpu_start = time.perf_counter(), time.process_time()
            steps = load_file(root, key)
            walls.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu_start)
            for step, seconds in step_times.items():
                seconds.append(steps.get(step, 0.0))
            if n in report_at or n % 50 == 0:
                tweets = data.count(b'{"data"')
                tables = table_files(root)
                for name, (files, _) in tables.items():
                    max_files[name] = max(max_files.get(name, 0), files)
                window = statistics.mean(walls[-WINDOW:])
                print(f"batch {n:>5} ({closed:%Y-%m-%d %H:%M}Z, {tweets} tweets): "
                      f"{walls[-1]:.2f} s (mean of last {WINDOW}: {window:.2f} s, CPU "
                      f"{statistics.mean(cpus[-WINDOW:]):.2f} s); "
                      f"bronze step {steps.get('twitter_bronze', 0):.2f} s, silver step "
                      f"{steps.get('twitter_silver', 0):.2f} s", flush=True)
                if n in report_at:
                    print_tables(tables)
            if args.upkeep_every and n % args.upkeep_every == 0:
                # the log's retention in the bench's time: that many batches at its pace
                log_hours = args.log_retention_batches * (time.perf_counter() - began) / n / 3600
                seconds, before, after = upkeep(root, args.retention_hours, log_hours)
                for name, files in before.items():  # the day's peak, just before the upkeep
                    max_files[name] = max(max_files.get(name, 0), files)
                fullest = max(before, key=before.get)
                print(f"upkeep after batch {n} (log kept {log_hours * 3600:.0f} s): "
                      f"{seconds:.1f} s, active files "
                      f"{sum(before.values())} -> {sum(after.values())} over all tables "
                      f"(fullest before: {fullest} {before[fullest]} -> {after[fullest]})",
                      flush=True)
        tables = table_files(root)
        for name, (files, _) in tables.items():
            max_files[name] = max(max_files.get(name, 0), files)
        report(args, walls, cpus, step_times, max_files)
        if args.replays:
            replay(saved / "early", saved / "late", args.replays, Path(temp), warm_up=False)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return 0


def report(args: argparse.Namespace, walls: list[float], cpus: list[float],
           step_times: dict[str, list[float]], max_files: dict[str, int]) -> None:
    """The sequential run's figures: the windows' ratio, the steps, the fullest table."""

    early = statistics.mean(walls[max(0, 10 - WINDOW):10])
    late = statistics.mean(walls[-WINDOW:])
    ratio = late / early
    cpu_ratio = statistics.mean(cpus[-WINDOW:]) / statistics.mean(cpus[max(0, 10 - WINDOW):10])
    for step, seconds in step_times.items():
        print(f"{step} step, means of the same windows: "
              f"{statistics.mean(seconds[max(0, 10 - WINDOW):10]):.2f} s at batch 10, "
              f"{statistics.mean(seconds[-WINDOW:]):.2f} s at batch {len(walls)}")
    worst = max(max_files.items(), key=lambda kv: kv[1])
    print(f"ratio batch {len(walls)} / batch 10 (means of {WINDOW}-batch windows, sequential): "
          f"{late:.2f} s / {early:.2f} s = {ratio:.2f} (target <= {TARGET_RATIO}: "
          f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}); the same in CPU seconds: "
          f"{cpu_ratio:.2f}")
    print(f"max active files of any table (at the report points and before each upkeep): "
          f"{worst[1]} "
          f"({worst[0]}; target <= {TARGET_FILES}: "
          f"{'met' if worst[1] <= TARGET_FILES else 'NOT met'})", flush=True)


if __name__ == "__main__":
    sys.exit(main())
