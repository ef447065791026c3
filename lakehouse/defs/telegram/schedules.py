"""The Telegram daily ETL as a schedule: rebuild yesterday's silver day and the gold."""

from datetime import timedelta

import dagster as dg

from lakehouse.defs.telegram.jobs import telegram_daily_etl_job


@dg.schedule(job=telegram_daily_etl_job, cron_schedule="30 0 * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="At 00:30 UTC, rebuilds yesterday's silver messages (edits that arrived "
                         "late included) and the Telegram gold models.")
def telegram_daily_etl_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    yesterday = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
    return dg.RunRequest(run_key=f"telegram-daily-{yesterday}", partition_key=yesterday)
