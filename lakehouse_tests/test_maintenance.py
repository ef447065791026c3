"""Table upkeep: many small writes end as few files, with the same rows, and old files go."""

from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow as pa
from deltalake import DeltaTable

from lakehouse.defs.maintenance.jobs import lake_maintenance_job
from lakehouse.lake.delta import append_replacing_sources, merge_on_keys
from lakehouse.lake.ledger import Ledger
from lakehouse.lake.location import Lake
from lakehouse.lake.maintenance import active_files, maintain_table
from lakehouse.lake.resource import LakeResource


def _batches(lake: Lake, n: int) -> tuple[str, str]:
    bronze = lake.table_uri("bronze", "events")
    silver = lake.table_uri("silver", "events")
    for i in range(n):
        source = f"raw/x/{i:04d}.json"
        rows = pl.DataFrame({"id": [i, i + 1], "day": ["2026-11-10", "2026-11-11"],
                             "_source_file": [source, source]})
        append_replacing_sources(lake, bronze, rows, [source], partition_by=["day"])
        merge_on_keys(lake, silver, rows.drop("_source_file"), ["id"], partition_by=["day"])
    return bronze, silver


def _rows(lake: Lake, uri: str) -> pl.DataFrame:
    return pl.read_delta(uri, storage_options=lake.storage_options or None).sort("id", "day")


def test_maintenance_compacts_checkpoints_and_vacuums_every_table(lake: Lake) -> None:
    bronze, silver = _batches(lake, 30)
    expected = {uri: _rows(lake, uri) for uri in (bronze, silver)}
    assert active_files(DeltaTable(bronze)).files == 60

    result = lake_maintenance_job.execute_in_process(
        resources={"lake": LakeResource()},
        run_config={"ops": {"maintain_lake_tables": {"config": {"retention_hours": 0}}}})

    assert result.success
    observed = {e.asset_key.to_user_string(): e.event_specific_data.asset_observation.metadata
                for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"}
    assert set(observed) == {"bronze/events", "silver/events"}
    for uri, key in ((bronze, "bronze/events"), (silver, "silver/events")):
        table = DeltaTable(uri)
        assert active_files(table).files == 2  # one file per day partition
        assert _rows(lake, uri).equals(expected[uri])
        assert observed[key]["files_after"].value == 2
        assert observed[key]["files_before"].value > 2
        assert observed[key]["files_vacuumed"].value > 0
        # the vacuumed files are gone from disk, only the live ones remain
        on_disk = sorted(p.relative_to(uri) for p in Path(uri).rglob("*.parquet")
                         if "_delta_log" not in p.parts)
        assert len(on_disk) == 2, on_disk
        assert any(p.name.endswith(".checkpoint.parquet") for p in Path(uri, "_delta_log").iterdir())


def test_maintenance_with_the_default_retention_keeps_time_travel(lake: Lake) -> None:
    bronze, _ = _batches(lake, 3)
    result = lake_maintenance_job.execute_in_process(resources={"lake": LakeResource()})
    assert result.success
    first = pl.read_delta(bronze, version=1)  # version 0 is the empty, described table
    assert first.height == 2  # the first write's files survive a 7-day retention
    assert dg.AssetKey(["bronze", "events"]) in {
        e.asset_key for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"}


def _commits_in_log(uri: str) -> int:
    return sum(1 for p in Path(uri, "_delta_log").iterdir() if p.name.endswith(".json"))


def test_the_log_is_kept_as_long_as_the_retention_not_for_ever(lake: Lake) -> None:
    # Opening a table lists its whole _delta_log folder on a local lake (about 5 us a file):
    # a log kept for ever makes every open of a table written every 5 minutes slower with
    # each write. A version older than the retention has lost its files to vacuum anyway.
    _, silver = _batches(lake, 30)
    expected = _rows(lake, silver)
    lake_maintenance_job.execute_in_process(
        resources={"lake": LakeResource()},
        run_config={"ops": {"maintain_lake_tables": {"config": {"retention_hours": 0,
                                                                "log_retention_hours": 0}}}})
    assert DeltaTable(silver).metadata().configuration["delta.logRetentionDuration"] == \
        "interval 0 hours"
    assert _commits_in_log(silver) <= 3  # the checkpoint's commit, vacuum's start and end
    # Between upkeeps the writers' own checkpoints drop the expired commits.
    for i in range(100, 130):
        merge_on_keys(lake, silver, pl.DataFrame({"id": [i], "day": ["2026-11-12"]}), ["id"],
                      partition_by=["day"])
        assert _commits_in_log(silver) <= 10
    rows = _rows(lake, silver)
    assert rows.filter(pl.col("id") < 100).equals(expected)
    assert rows.height == expected.height + 30


def test_the_default_retention_keeps_a_day_of_log(lake: Lake) -> None:
    bronze, _ = _batches(lake, 12)
    commits = _commits_in_log(bronze)
    assert lake_maintenance_job.execute_in_process(resources={"lake": LakeResource()}).success
    assert DeltaTable(bronze).metadata().configuration["delta.logRetentionDuration"] == \
        "interval 24 hours"
    assert _commits_in_log(bronze) >= commits  # nothing a day old yet: every commit kept
    assert pl.read_delta(bronze, version=1).height == 2


def test_a_shorter_log_retention_trims_the_log_and_keeps_the_files(lake: Lake) -> None:
    bronze, _ = _batches(lake, 12)
    expected = _rows(lake, bronze)
    result = lake_maintenance_job.execute_in_process(
        resources={"lake": LakeResource()},
        run_config={"ops": {"maintain_lake_tables": {"config": {"log_retention_hours": 0}}}})
    assert result.success
    assert DeltaTable(bronze).metadata().configuration["delta.logRetentionDuration"] == \
        "interval 0 hours"
    assert _commits_in_log(bronze) <= 3
    assert _rows(lake, bronze).equals(expected)
    # The files keep their 7-day retention: the compacted small files are still on disk.
    on_disk = [p for p in Path(bronze).rglob("*.parquet") if "_delta_log" not in p.parts]
    assert len(on_disk) > active_files(DeltaTable(bronze)).files


def test_a_new_table_and_a_ledger_keep_a_day_of_log_from_their_first_commit(lake: Lake) -> None:
    # Writers trim the expired log at each checkpoint, so a table written every few minutes has
    # a bounded log from the start, not only after its first upkeep; the ledgers (which no upkeep
    # visits) too.
    bronze, _ = _batches(lake, 2)
    ledger = Ledger(lake, "bronze", "some_table")
    ledger.record(["raw/some/key.json"])
    for uri in (bronze, ledger.uri):
        assert DeltaTable(uri).metadata().configuration["delta.logRetentionDuration"] == \
            "interval 24 hours"


def _merge_metrics(uri: str) -> dict:
    commit = DeltaTable(uri).history(1)[0]
    assert commit["operation"] == "MERGE"
    return commit["operationMetrics"]


def test_after_upkeep_an_edit_rewrites_only_the_file_holding_the_row(lake: Lake) -> None:
    # Tweets of today arrive in batches and later batches update some earlier ones (an edit
    # relinks its original). Compacted into one file, today was rewritten whole by each such
    # merge; the upkeep keeps the newest partitions in bounded files ordered by the merge key,
    # so the merge copies one file's rows.
    silver = lake.table_uri("silver", "tweets")
    # Snowflake ids a millisecond apart (z-ordering sorts by a key's first 16 bytes).
    ids = [str(2_000_000_000_000_000_000 + n * 4_194_304) for n in range(6_000)]
    merge_on_keys(lake, silver, pl.DataFrame({"id": ids[:10], "day": ["2026-10-01"] * 10,
                                              "text": ["old"] * 10}), ["day", "id"],
                  partition_by=["day"])
    for start in range(0, 6_000, 200):  # 30 batches of one day
        chunk = ids[start:start + 200]
        merge_on_keys(lake, silver, pl.DataFrame({"id": chunk, "day": ["2026-11-10"] * len(chunk),
                                                  "text": [f"tweet {i}" for i in chunk]}),
                      ["day", "id"], partition_by=["day"])
    expected = _rows(lake, silver)

    report = maintain_table(lake, silver, retention_hours=0, hot_target_size=40_000)

    table = DeltaTable(silver)
    files = pl.from_arrow(pa.table(table.get_add_actions(flatten=True))).sort("min.id")
    today = files.filter(pl.col("partition.day") == "2026-11-10")
    assert 3 <= today.height < 30, today  # bounded files, far fewer than the batches
    # ordered by the key: no two files' id ranges overlap
    assert (today.get_column("min.id").slice(1) > today.get_column("max.id").slice(0, today.height - 1)).all()
    assert report.after.files == files.height
    assert _rows(lake, silver).equals(expected)

    edited = ids[3_000]
    merge_on_keys(lake, silver, pl.DataFrame({"id": [edited], "day": ["2026-11-10"],
                                              "text": ["edited"]}), ["day", "id"],
                  partition_by=["day"])
    metrics = _merge_metrics(silver)
    holding = today.filter((pl.col("min.id") <= edited) & (pl.col("max.id") >= edited))
    assert metrics["num_target_files_removed"] == 1
    assert metrics["num_target_rows_copied"] == holding.get_column("num_records").item() - 1
    assert metrics["num_target_rows_copied"] < 6_000 // 3
    assert _rows(lake, silver).filter(pl.col("id") == edited).get_column("text").to_list() == ["edited"]


def test_upkeep_leaves_unchanged_hot_partitions_alone_and_compacts_old_ones(lake: Lake) -> None:
    silver = lake.table_uri("silver", "tweets")
    for n, day in enumerate(["2026-11-08", "2026-11-08", "2026-11-09", "2026-11-10"] * 3):
        merge_on_keys(lake, silver, pl.DataFrame({"id": [f"{n:04d}"], "day": [day]}),
                      ["day", "id"], partition_by=["day"])
    maintain_table(lake, silver, retention_hours=0)
    per_day = pl.from_arrow(pa.table(DeltaTable(silver).get_add_actions(flatten=True))) \
        .group_by("partition.day").len()
    assert dict(per_day.iter_rows()) == {"2026-11-08": 1, "2026-11-09": 1, "2026-11-10": 1}
    version = DeltaTable(silver).version()
    maintain_table(lake, silver, retention_hours=0)
    history = DeltaTable(silver).history()
    assert not [c for c in history if c["version"] > version and c["operation"] == "OPTIMIZE"]
