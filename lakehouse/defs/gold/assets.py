"""Gold: every dbt model as a Dagster asset, each landed as a Delta table at ``gold/<model>``.

dbt-duckdb builds the models as DuckDB tables, reading silver Delta tables through its ``delta``
plugin. Once dbt has exited (DuckDB allows one writing process per file), each built model is
copied to Delta and its materialization carries the Delta facts. dbt tests become asset checks.
Sources declare ``meta.dagster.asset_key``, which puts the gold models downstream of the Polars
silver assets in the lineage graph.
"""


import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from lakehouse.lake.delta import delta_metadata, overwrite_table
from lakehouse.lake.location import Lake
from lakehouse.lake.resource import LakeResource

DBT_PROJECT_DIR = Path(__file__).resolve().parents[3] / "dbt_project"
DEFAULT_DUCKDB_PATH = "data/gold.duckdb"
# The dbt of this interpreter's environment, so an un-activated venv works too.
DBT_EXECUTABLE = str(Path(sys.executable).parent / "dbt")
if Path(DBT_EXECUTABLE).exists() and str(Path(DBT_EXECUTABLE).parent) not in os.environ.get(
        "PATH", "").split(os.pathsep):
    # dagster-dbt's own preparer (dagster dev) looks for `dbt` on PATH.
    os.environ["PATH"] = os.pathsep.join([str(Path(DBT_EXECUTABLE).parent), os.environ["PATH"]])
DBT_POOL = "duckdb"  # one writer per DuckDB file: runs of dbt are serialised by this pool

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
dbt_project.prepare_if_dev()
if not dbt_project.manifest_path.exists():
    # A fresh clone has no manifest; `make` builds it, this keeps a bare import working too.
    dbt_project.preparer.prepare(dbt_project)


# Gold follows silver by itself (declarative automation, evaluated by gold_automation_sensor):
# a model is requested once any table it reads has been updated, and waits while one of them
# is being written. Unlike `eager()`, missing partitions upstream do not hold it back: silver's
# daily partitions are only ever filled where data exists.
GOLD_AUTOMATION = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("after any upstream update")


class LakehouseTranslator(DagsterDbtTranslator):
    """Models are ``gold/<model>`` in the gold group; sources map to silver asset keys."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str,
                       project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] != "model":
            return spec
        return spec.replace_attributes(
            key=dg.AssetKey(["gold", props["name"]]),
            group_name="gold",
            kinds={"dbt", "duckdb", "delta"},
            automation_condition=GOLD_AUTOMATION,
        )


def duckdb_path() -> Path:
    return Path(os.environ.get("LAKEHOUSE_DUCKDB_PATH", DEFAULT_DUCKDB_PATH)).resolve()


def dbt_env(lake: Lake) -> dict[str, str]:
    """What the dbt profile and sources read: the lake root and the DuckDB file, absolute."""
    env = {"LAKEHOUSE_ROOT": lake.root, "LAKEHOUSE_DUCKDB_PATH": str(duckdb_path())}
    env.update(lake.storage_options)  # delta-rs in the dbt process reads the AWS variables
    return env


def land_models_as_delta(lake: Lake, models: list[str]) -> dict[str, dict[str, Any]]:
    """Copy each built DuckDB table to ``gold/<model>`` (one Delta commit each).

    Each commit also carries the model's name, description and column descriptions from the dbt
    manifest (``overwrite_table`` through ``lakehouse.lake.table_docs``), so the Delta table
    describes itself as the dbt docs do.
    """
    facts: dict[str, dict[str, Any]] = {}
    with duckdb.connect(str(duckdb_path()), read_only=True) as con:
        for model in models:
            frame = con.sql(f'select * from main."{model}"').pl()
            assert isinstance(frame, pl.DataFrame)
            uri = lake.table_uri("gold", model)
            overwrite_table(lake, uri, frame)
            facts[model] = delta_metadata(lake, uri, frame)
    return facts


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=LakehouseTranslator(),
    pool=DBT_POOL,
)
def gold_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource,
                    lake: LakeResource) -> Iterator[Any]:
    the_lake = lake.lake()
    os.environ.update(dbt_env(the_lake))
    duckdb_path().parent.mkdir(parents=True, exist_ok=True)
    # Collect first: the DuckDB file is only readable here once the dbt process has exited.
    events = list(dbt.cli(["build"], context=context).stream())
    def model_of(output: dg.Output) -> str:
        return context.asset_key_for_output(output.output_name).path[-1]

    built = [model_of(e) for e in events if isinstance(e, dg.Output)]
    facts = land_models_as_delta(the_lake, built) if built else {}
    for event in events:
        if isinstance(event, dg.Output):
            yield event.with_metadata({**event.metadata, **facts.get(model_of(event), {})})
        else:
            yield event


def gold_selection(tag: str) -> dg.AssetSelection:
    """The gold models of one domain (dbt tag), with their dbt tests."""
    from dagster_dbt import build_dbt_asset_selection

    return build_dbt_asset_selection([gold_dbt_models], dbt_select=f"tag:{tag}")
