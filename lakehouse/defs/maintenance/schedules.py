"""Table upkeep every six hours.

A table written every five minutes gains about one file a batch: bench/steady_state.py saw the
append-only Twitter tables reach about 290 files between daily upkeeps, and about 75 is the
expectation at this cadence, under the 200 a reader should have to open.
"""

import dagster as dg

from lakehouse.defs.maintenance.jobs import lake_maintenance_job

lake_maintenance_schedule = dg.ScheduleDefinition(
    name="lake_maintenance_schedule", job=lake_maintenance_job, cron_schedule="15 */6 * * *",
    execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every six hours (at :15), compacts, checkpoints and vacuums every Delta table "
                "(retention: 7 days unless the run config says otherwise).")
