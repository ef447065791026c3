"""The Telegram daily ETL as a schedule: rebuild yesterday's silver day and the gold."""

from datetime import timedelta

import dagster as dg

from lakehouse.defs.telegram.assets import BRONZE_UPDATES, message_days
from lakehouse.defs.telegram.jobs import telegram_daily_etl_job
from lakehouse.defs.telegram.sensors import not_rebuilt_since


@dg.schedule(job=telegram_daily_etl_job, cron_schedule="30 0 * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="At 00:30 UTC, rebuilds yesterday's silver messages (edits that arrived "
                         "late included) and the Telegram gold models, unless yesterday has no "
                         "message or silver rebuilt it after the last bronze load.")
def telegram_daily_etl_schedule(context: dg.ScheduleEvaluationContext
                                ) -> dg.RunRequest | dg.SkipReason:
    yesterday = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
    instance = context.instance
    if not message_days.has_partition_key(yesterday, dynamic_partitions_store=instance):
        return dg.SkipReason(f"no message on {yesterday}: it is not a partition")
    loads = instance.fetch_materializations(BRONZE_UPDATES, limit=1, ascending=False).records
    if loads and not not_rebuilt_since(instance, {yesterday: loads[0]}):
        return dg.SkipReason(f"silver rebuilt {yesterday} after the last bronze load")
    return dg.RunRequest(run_key=f"telegram-daily-{yesterday}", partition_key=yesterday)
