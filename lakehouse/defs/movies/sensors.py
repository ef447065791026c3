"""A sensor on the CSV drop folder: each new or changed file becomes one run of its partition."""

from __future__ import annotations

import json

import dagster as dg

from lakehouse.defs.movies.assets import csv_drop_partitions
from lakehouse.defs.movies.jobs import csv_drop_job
from lakehouse.sources.csv_drop import CsvDropResource


@dg.sensor(job=csv_drop_job, minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.RUNNING)
def movies_csv_drop_sensor(context: dg.SensorEvaluationContext,
                           csv_drop: CsvDropResource) -> dg.SensorResult:
    """Lists the drop folder (cheap: names, sizes, mtimes); the assets read the files.

    The cursor maps file name to size-mtime; the run key carries the same identity, so a
    repeated tick never starts the same load twice, and a rewritten file loads again.
    """
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    files = csv_drop.files()
    fresh = [f for f in files if seen.get(f.name) != f.fingerprint]
    known = set(context.instance.get_dynamic_partitions(csv_drop_partitions.name))
    new_specs = sorted({f.spec for f in fresh} - known)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"{f.name}:{f.fingerprint}", partition_key=f.spec,
                                    tags={"movies/drop_file": f.name}) for f in fresh],
        dynamic_partitions_requests=[csv_drop_partitions.build_add_request(new_specs)]
        if new_specs else [],
        cursor=json.dumps({f.name: f.fingerprint for f in files}, sort_keys=True),
    )
