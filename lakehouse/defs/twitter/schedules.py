"""Recent search every 5 minutes (the Twitter batch pipeline's ECS task), as a schedule of
the recent-search asset."""

import dagster as dg

from lakehouse.defs.twitter.jobs import twitter_search_job

SEARCH_CRON = "*/5 * * * *"


@dg.schedule(job=twitter_search_job, cron_schedule=SEARCH_CRON, execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Every 5 minutes, lands the tweets newer than the since_id mark.")
def twitter_search_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    slot = context.scheduled_execution_time.strftime("%Y%m%dT%H%M")
    return dg.RunRequest(run_key=f"twitter-search-{slot}")
