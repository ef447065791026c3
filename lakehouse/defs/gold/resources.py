"""The dbt CLI resource for the gold models."""

import dagster as dg
from dagster_dbt import DbtCliResource

from lakehouse.defs.gold.assets import dbt_project
from lakehouse.settings import DBT_EXECUTABLE, DBT_PROJECT_DIR


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"dbt": DbtCliResource(
        project_dir=dbt_project, profiles_dir=str(DBT_PROJECT_DIR),
        dbt_executable=DBT_EXECUTABLE)})
