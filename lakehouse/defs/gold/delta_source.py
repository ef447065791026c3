"""dbt-duckdb's ``delta`` plugin with a bounded read: the profile loads it under the alias ``delta``.

The stock plugin hands DuckDB the table's whole ``pyarrow`` dataset, which DuckDB scans through
Arrow. Every source is materialized as a DuckDB table (``materialization: table``), and that
copy through Arrow grew dbt's process with the table whatever DuckDB's ``memory_limit``: the
Arrow batches and what DuckDB builds from them are outside its buffer pool (copying
``imdb_principals`` alone: 965 MiB at a tenth of the real size, 1,801 MiB at 0.4 of it, with a
1GB limit, and about the same with pyarrow's system allocator or one DuckDB thread). DuckDB's
own Parquet reader works inside that limit (the same copy at 0.4: 722 MiB).

So a table of a local lake whose files DuckDB can read as they are (no partition columns, which
Delta keeps in its log, not in the files; no deletion vectors) is read by DuckDB from its
Parquet files, the table's current files from the Delta log, its columns in the Delta schema's
order. Anything else (a lake on S3: DuckDB's httpfs is not installed at run time; an empty table)
gets a scanner over the dataset that reads one file and a couple of batches ahead.
"""

from typing import Any

import duckdb
from dbt.adapters.duckdb.plugins import delta
from dbt.adapters.duckdb.utils import SourceConfig
from deltalake import DeltaTable

# Rows per Arrow batch handed to DuckDB (pyarrow's default), files and batches read ahead.
BATCH_ROWS = 131_072
FILES_AHEAD = 1
BATCHES_AHEAD = 2


def local_parquet_files(table: DeltaTable) -> list[str] | None:
    """The table's current files when DuckDB can read them as the table: on local disk, not
    partitioned, no deletion vectors, no column mapping, at least one file; otherwise None."""
    if table.metadata().partition_columns:
        return None
    if "deletionVectors" in (table.protocol().writer_features or []):
        return None
    if table.metadata().configuration.get("delta.columnMapping.mode", "none") != "none":
        return None  # the files' columns carry physical names, not the table's
    files = table.file_uris()
    if not files:
        return None
    if not all(_is_local(uri) for uri in files):
        return None
    return [uri.removeprefix("file://") for uri in files]


def _is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Plugin(delta.Plugin):
    def initialize(self, config: dict[str, Any]) -> None:
        super().initialize(config)
        self.batch_rows = int(config.get("batch_rows", BATCH_ROWS))
        self.files_ahead = int(config.get("files_ahead", FILES_AHEAD))
        self.batches_ahead = int(config.get("batches_ahead", BATCHES_AHEAD))
        self.connection: duckdb.DuckDBPyConnection | None = None

    def configure_connection(self, conn: duckdb.DuckDBPyConnection) -> None:
        # A relation is only readable on a connection to the database it was made on: the
        # Parquet read below is made on dbt's own connection.
        super().configure_connection(conn)
        self.connection = conn

    def load(self, source_config: SourceConfig) -> Any:
        if "delta_table_path" not in source_config:
            raise Exception("'delta_table_path' is a required argument for the delta table!")
        path = source_config["delta_table_path"]
        # Only a local table's current version can be read from its files: anything else goes
        # straight to the stock plugin, which opens the table itself (not twice).
        if self.connection is not None and _is_local(path) and not (
                source_config.get("as_of_version") or source_config.get("as_of_datetime")):
            table = DeltaTable(path, storage_options=source_config.get("storage_options") or None)
            files = local_parquet_files(table)
            if files is not None:
                columns = ", ".join(_quoted(f.name) for f in table.schema().fields)
                # union_by_name: a file written before a column was added reads it as null,
                # as Delta does.
                return self.connection.read_parquet(files, union_by_name=True).select(columns)
        dataset = super().load(source_config)
        return dataset.scanner(batch_size=self.batch_rows, fragment_readahead=self.files_ahead,
                               batch_readahead=self.batches_ahead)
