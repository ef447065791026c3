"""Table upkeep as a job: every Delta table of the lake compacted, checkpointed and vacuumed.

Each table's before/after facts are recorded as an observation on the table's own asset, so
its page in the UI shows how many files it holds over time.
"""

import dagster as dg
from pydantic import Field

from lakehouse.lake.delta import LOG_RETENTION_HOURS
from lakehouse.lake.location import LAYERS
from lakehouse.lake.maintenance import DEFAULT_RETENTION_HOURS, maintain_table
from lakehouse.lake.resource import LakeResource

TABLE_LAYERS = tuple(layer for layer in LAYERS if layer != "raw")


class MaintenanceConfig(dg.Config):
    retention_hours: int = Field(
        default=DEFAULT_RETENTION_HOURS, ge=0,
        description="Files no version within this many hours references are deleted "
                    "(time travel further back is given up).")
    log_retention_hours: float = Field(
        default=LOG_RETENTION_HOURS, ge=0,
        description="The log's commits older than this many hours are deleted (default a "
                    "day); versions further back can no longer be loaded. Every open of a "
                    "table lists its whole log on a local lake: a short log keeps frequently "
                    "written tables cheap to open.")
    target_file_bytes: int | None = Field(
        default=None, description="Compaction's target file size (delta-rs default: 100 MB).")


@dg.op(description="Compacts, checkpoints and vacuums every Delta table of the lake; one "
                   "table's failure is reported and the others still get their upkeep.")
def maintain_lake_tables(context: dg.OpExecutionContext, config: MaintenanceConfig,
                         lake: LakeResource) -> dg.Output[dict]:
    the_lake = lake.lake()
    summary: dict[str, dict] = {}
    failed: list[str] = []
    for layer in TABLE_LAYERS:
        for table in the_lake.delta_tables(layer):
            name = f"{layer}/{table}"
            try:
                report = maintain_table(the_lake, the_lake.table_uri(layer, table),
                                        retention_hours=config.retention_hours,
                                        target_size=config.target_file_bytes,
                                        log_retention_hours=config.log_retention_hours)
            except Exception as error:  # noqa: BLE001  (one table must not stop the others)
                context.log.error(f"upkeep of {name} failed: {type(error).__name__}: {error}")
                failed.append(name)
                continue
            metadata = report.as_metadata()
            summary[name] = metadata
            context.log_event(dg.AssetObservation(asset_key=dg.AssetKey([layer, table]),
                                                  metadata=metadata))
    if failed:
        raise dg.Failure(f"table upkeep failed for {', '.join(failed)} (see the logs above); "
                         f"{len(summary)} other tables were maintained")
    return dg.Output(summary, metadata={"tables": len(summary),
                                        "files_before": sum(m["files_before"] for m in summary.values()),
                                        "files_after": sum(m["files_after"] for m in summary.values())})


@dg.job(description="Table upkeep: compaction, checkpoint and vacuum of every Delta table.")
def lake_maintenance_job() -> None:
    maintain_lake_tables()
