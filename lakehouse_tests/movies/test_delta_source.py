"""The gold models' ``delta`` source plugin: what DuckDB reads for a Delta table, and how.

Each test builds real Delta tables with delta-rs and loads them through the plugin on a real
DuckDB connection, as dbt-duckdb does (``configure_connection``, then ``load`` and a table
created from what it returns)."""

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from dbt.adapters.duckdb.utils import SourceConfig
from deltalake import DeltaTable, write_deltalake

from lakehouse.defs.gold.delta_source import Plugin, local_parquet_files
from lakehouse.lake.location import Lake


def source(path: str, **meta: object) -> SourceConfig:
    return SourceConfig(name="t", identifier="t", schema="silver", database=None,
                        meta={"delta_table_path": path, **meta}, tags=[])


def materialize(con: duckdb.DuckDBPyConnection, plugin: Plugin, config: SourceConfig) -> list:
    """The source as dbt-duckdb materializes it: registered, then copied into a table."""
    cursor = con.cursor()
    cursor.register("t_df", plugin.load(config))
    cursor.execute("create or replace table t as select * from t_df")
    return cursor.execute("select * from t order by 1").fetchall()


@pytest.fixture
def connected(tmp_path: Path) -> tuple[duckdb.DuckDBPyConnection, Plugin]:
    con = duckdb.connect(str(tmp_path / "gold.duckdb"))
    plugin = Plugin(name="delta", plugin_config={})
    plugin.configure_connection(con)
    yield con, plugin
    con.close()


def test_a_local_table_is_read_from_its_current_files_in_the_delta_schema(
        tmp_path: Path, connected: tuple[duckdb.DuckDBPyConnection, Plugin]) -> None:
    con, plugin = connected
    uri = str(tmp_path / "titles")
    write_deltalake(uri, pa.table({"id": [1, 2], "title": ["Heat", "Ran"]}))
    # Overwritten, then a column added by a second file: only the current files count, and the
    # file written before the column existed reads it as null.
    write_deltalake(uri, pa.table({"id": [3], "title": ["Alien"]}), mode="overwrite")
    write_deltalake(uri, pa.table({"id": [4], "title": ["Brazil"], "year": [1985]}),
                    mode="append", schema_mode="merge")

    assert len(local_parquet_files(DeltaTable(uri)) or []) == 2
    assert materialize(con, plugin, source(uri)) == [(3, "Alien", None), (4, "Brazil", 1985)]
    assert [c[0] for c in con.execute("describe t").fetchall()] == ["id", "title", "year"]


def test_a_partitioned_table_keeps_its_partition_column(
        tmp_path: Path, connected: tuple[duckdb.DuckDBPyConnection, Plugin]) -> None:
    # Delta keeps partition values in its log, not in the files: read through Arrow instead.
    con, plugin = connected
    uri = str(tmp_path / "messages")
    write_deltalake(uri, pa.table({"day": ["2026-01-01", "2026-01-02"], "n": [1, 2]}),
                    partition_by=["day"])
    assert local_parquet_files(DeltaTable(uri)) is None
    materialize(con, plugin, source(uri))
    assert con.execute("select day, n from t order by day").fetchall() == [
        ("2026-01-01", 1), ("2026-01-02", 2)]


def test_an_empty_table_loads_with_its_columns(
        tmp_path: Path, connected: tuple[duckdb.DuckDBPyConnection, Plugin]) -> None:
    con, plugin = connected
    uri = str(tmp_path / "empty")
    write_deltalake(uri, pa.table({"id": pa.array([], pa.int64()), "name": pa.array([], pa.string())}))
    assert materialize(con, plugin, source(uri)) == []
    assert [c[0] for c in con.execute("describe t").fetchall()] == ["id", "name"]


def test_a_table_on_s3_is_read_through_arrow(
        s3_lake: Lake, connected: tuple[duckdb.DuckDBPyConnection, Plugin]) -> None:
    con, plugin = connected
    uri = s3_lake.table_uri("silver", "ratings")
    write_deltalake(uri, pa.table({"id": [1, 2], "rating": [7.5, 8.0]}),
                    storage_options=s3_lake.storage_options)
    config = source(uri, storage_options=s3_lake.storage_options)
    assert materialize(con, plugin, config) == [(1, 7.5), (2, 8.0)]
