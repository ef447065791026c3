"""Nightly table upkeep, after the Telegram daily ETL (00:30) has rebuilt its day."""

import dagster as dg

from lakehouse.defs.maintenance.jobs import lake_maintenance_job

lake_maintenance_schedule = dg.ScheduleDefinition(
    name="lake_maintenance_schedule", job=lake_maintenance_job, cron_schedule="15 3 * * *",
    execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
    description="At 03:15 UTC, compacts, checkpoints and vacuums every Delta table "
                "(retention: 7 days unless the run config says otherwise).")
