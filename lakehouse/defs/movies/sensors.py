"""A sensor on the CSV drop folder: each dropped file whose content silver does not hold yet
becomes one run of its partition (the raw-file sensor factory, over the drop folder)."""

from datetime import date

import dagster as dg

from lakehouse.defs.movies.assets import CSV_DROP_LEDGER, csv_drop_partitions, drop_identity
from lakehouse.defs.movies.jobs import csv_drop_job
from lakehouse.defs.raw_files import raw_file_sensor
from lakehouse.lake.location import Lake
from lakehouse.transforms.csv_drop import spec_of


def _dropped(context: dg.SensorEvaluationContext, lake: Lake, since: date | None) -> list[str]:
    """The drop folder's files as ``name:size-mtime`` (cheap: no file is read)."""
    return [drop_identity(f) for f in context.resources.csv_drop.files()]


def _run_for(run_key: str, identities: list[str]) -> dg.RunRequest:
    name = identities[0].rsplit(":", 1)[0]
    return dg.RunRequest(run_key=run_key, partition_key=spec_of(name),
                         tags={"movies/drop_file": name})


def _new_partitions(context: dg.SensorEvaluationContext,
                    requests: list[dg.RunRequest]) -> dict:
    known = set(context.instance.get_dynamic_partitions(csv_drop_partitions.name))
    new_specs = sorted({r.partition_key for r in requests} - known)
    return {"dynamic_partitions_requests":
            [csv_drop_partitions.build_add_request(new_specs)] if new_specs else []}


movies_csv_drop_sensor = raw_file_sensor(
    name="movies_csv_drop_sensor", job=csv_drop_job, ledger=CSV_DROP_LEDGER,
    list_landed=_dropped, request_for=_run_for, files_per_run=1,
    required_resource_keys=frozenset({"lake", "csv_drop"}), extra_requests=_new_partitions,
    description="Each file of the drop folder (name, size and mtime) that the CSV drop ledger "
                "does not hold becomes one run of its partition: new and rewritten files load "
                "once, and a folder already loaded (after make demo) asks for nothing.",
)
