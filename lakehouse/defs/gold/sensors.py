"""Gold updates itself: the automation sensor that evaluates the dbt models' conditions.

Dagster's default automation sensor starts stopped; this one starts running, so after new
silver data the gold models that read it are rebuilt without a sensor or job per domain. The
dbt runs it starts share the ``duckdb`` pool, one at a time.
"""

import dagster as dg

from lakehouse.defs.gold.assets import gold_dbt_models

gold_automation_sensor = dg.AutomationConditionSensorDefinition(
    "gold_automation_sensor",
    target=dg.AssetSelection.assets(gold_dbt_models),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Rebuilds each gold model once any table it reads has been updated "
                "(its automation condition), in as few runs as the updates allow.",
)
