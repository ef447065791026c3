"""Gold: every dbt model as a Dagster asset, each landed as a Delta table at ``gold/<model>``.

dbt-duckdb builds the models as DuckDB tables, reading silver Delta tables through its ``delta``
plugin. Once dbt has exited (DuckDB allows one writing process per file), each built model is
copied to Delta and its materialization carries the Delta facts. dbt tests become asset checks.
Sources declare ``meta.dagster.asset_key``, which puts the gold models downstream of the Polars
silver assets in the lineage graph.
"""


from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
import duckdb
import polars as pl
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)
from deltalake import WriterProperties

from lakehouse.lake.delta import delta_metadata, overwrite_table
from lakehouse.lake.location import Lake
from lakehouse.lake.resource import LakeResource
from lakehouse.settings import DBT_PROJECT_DIR, dbt_vars, duckdb_path

DBT_POOL = "duckdb"  # one writer per DuckDB file: runs of dbt are serialised by this pool

# Importing this module neither runs dbt nor changes the environment: the manifest is built
# beforehand (`make install`, or `dbt parse` in dbt_project/; see CONTRIBUTING).
dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
if not dbt_project.manifest_path.exists():
    raise FileNotFoundError(
        f"{dbt_project.manifest_path} is missing: run `make install` (or `cd dbt_project && "
        "dbt parse --profiles-dir .`) before loading the code location")


def _quoted(values: Any) -> str:
    return ", ".join(str(v) for v in values) if isinstance(values, list) else str(values)


def dbt_test_description(test: Mapping[str, Any]) -> str:
    """What a dbt test asserts, in words, from its name and arguments (``test_metadata``)."""
    if test.get("description"):
        return str(test["description"])
    meta = test.get("test_metadata") or {}
    kwargs = meta.get("kwargs") or {}
    column = kwargs.get("column_name") or test.get("column_name")
    name = meta.get("name") or test.get("name", "")
    if name == "not_null":
        return f"`{column}` is never null."
    if name == "unique":
        return f"`{column}` is unique: no two rows share a value."
    if name == "accepted_values":
        return f"`{column}` is one of: {_quoted(kwargs.get('values', []))}."
    if name == "relationships":
        parent = str(kwargs.get("to", "")).removeprefix("ref('").removesuffix("')")
        return f"Every `{column}` exists in `{parent}.{kwargs.get('field')}`."
    if name == "unique_combination_of_columns":
        return f"One row per ({_quoted(kwargs.get('columns', []))})."
    target = f" on `{column}`" if column else ""
    return f"dbt test `{name}`{target}."


# Gold follows silver by itself (declarative automation, evaluated by gold_automation_sensor):
# a model is requested once any table it reads has been updated, and waits while one of them
# is being written. Unlike `eager()`, missing partitions upstream do not hold it back: silver's
# daily partitions are only ever filled where data exists.
GOLD_AUTOMATION = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
    # A gold model that reads another (fct_tweets) waits until that one exists or is built in
    # the same run: dbt would otherwise fail on a fresh DuckDB file.
    & ~dg.AutomationCondition.any_deps_match(
        dg.AutomationCondition.missing() & ~dg.AutomationCondition.will_be_requested()
    ).allow(dg.AssetSelection.key_prefixes(["gold"])).with_label("any gold dep missing")
).with_label("after any upstream update")


class LakehouseTranslator(DagsterDbtTranslator):
    """Models are ``gold/<model>`` in their domain's group (the folder under ``models/``, e.g.
    ``models/telegram/`` -> ``telegram``); sources map to silver asset keys; dbt tests become
    asset checks described in words; each model links to its SQL file."""

    def __init__(self) -> None:
        super().__init__(DagsterDbtTranslatorSettings(enable_code_references=True))

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str,
                       project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] != "model":
            return spec
        return spec.replace_attributes(
            key=dg.AssetKey(["gold", props["name"]]),
            group_name=props["fqn"][1],
            kinds={"dbt", "duckdb", "delta"},
            automation_condition=GOLD_AUTOMATION,
        )

    def get_asset_check_spec(self, asset_spec: dg.AssetSpec, manifest: Mapping[str, Any],
                             unique_id: str, project: DbtProject | None) -> dg.AssetCheckSpec | None:
        check = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if check is None or check.description:
            return check
        return dg.AssetCheckSpec(
            name=check.name, asset=check.asset_key, additional_deps=check.additional_deps,
            metadata=check.metadata, blocking=check.blocking,
            description=dbt_test_description(self.get_resource_props(manifest, unique_id)))


# What the landing holds at once is a batch or two in flight and the row group being written,
# whatever the model's size: batches and Parquet row groups of 131,072 rows (delta-rs writes a
# row group of 1M rows by default, kept in memory until it is full: a 14M-row dim_person's
# wide rows made that a few hundred MiB), and a DuckDB buffer pool that does not keep every
# block of the table read (by default it caches them up to 80% of the machine's memory; a plain
# scan needs a few row groups: at 256MB an 11M-row title table's landing still grew by the cache,
# 1.40x from 2.75M rows, at 64MB 1.18x).
LANDING_ROWS = 131_072
LANDING_WRITER = WriterProperties(compression="SNAPPY", max_row_group_size=LANDING_ROWS)
LANDING_DUCKDB = {"memory_limit": "64MB", "threads": 1}


def land_models_as_delta(lake: Lake, models: list[str]) -> dict[str, dict[str, Any]]:
    """Copy each built DuckDB table to ``gold/<model>`` (one Delta commit each).

    Each commit also carries the model's name, description and column descriptions from the dbt
    manifest (``overwrite_table`` through ``lakehouse.lake.table_docs``), so the Delta table
    describes itself as the dbt docs do.
    """
    facts: dict[str, dict[str, Any]] = {}
    with duckdb.connect(str(duckdb_path()), read_only=True, config=LANDING_DUCKDB) as con:
        for model in models:
            query = f'select * from main."{model}"'
            uri = lake.table_uri("gold", model)
            # Streamed in batches: a model of tens of millions of rows is never whole in memory.
            overwrite_table(lake, uri, lambda q=query: con.sql(q).fetch_arrow_reader(LANDING_ROWS),
                            writer_properties=LANDING_WRITER)
            preview = con.sql(f"{query} limit 10").pl()
            assert isinstance(preview, pl.DataFrame)
            facts[model] = delta_metadata(lake, uri, preview)
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
    duckdb_path().parent.mkdir(parents=True, exist_ok=True)
    # The lake this run was given (which may not be LAKEHOUSE_ROOT) reaches dbt as --vars.
    invocation = dbt.cli(["build", *dbt_vars(the_lake.root, duckdb_path(),
                                             the_lake.storage_options)], context=context)
    # Collect first: the DuckDB file is only readable here once the dbt process has exited.
    events = list(invocation.stream())
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
