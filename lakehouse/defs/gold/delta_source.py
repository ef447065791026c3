"""dbt-duckdb's ``delta`` plugin with a bounded read: the profile loads it under the alias ``delta``.

The stock plugin hands DuckDB the table's whole ``pyarrow`` dataset, which DuckDB scans with
pyarrow's defaults: four files and sixteen batches per file read ahead. Silver tables of the real
size are split in files of about ten million rows (``imdb_principals``: 3 files at a quarter of
the real size, 9 at the real size), so that read-ahead grew with the table up to four files'
decoded row groups: about 0.9 GiB of Arrow buffers in dbt's process for ``imdb_principals`` at a
quarter of the real size. Here DuckDB gets a scanner over the same dataset that reads one file at
a time and a couple of batches ahead, so what is in flight is a row group or two, whatever the
table's size. A scanner is scanned afresh by every query, so sources materialized as views still
read the whole table each time.
"""

from typing import Any

import pyarrow.dataset as ds
from dbt.adapters.duckdb.plugins import delta
from dbt.adapters.duckdb.utils import SourceConfig

# Rows per Arrow batch handed to DuckDB (pyarrow's default), files and batches read ahead.
BATCH_ROWS = 131_072
FILES_AHEAD = 1
BATCHES_AHEAD = 2


class Plugin(delta.Plugin):
    def initialize(self, config: dict[str, Any]) -> None:
        super().initialize(config)
        self.batch_rows = int(config.get("batch_rows", BATCH_ROWS))
        self.files_ahead = int(config.get("files_ahead", FILES_AHEAD))
        self.batches_ahead = int(config.get("batches_ahead", BATCHES_AHEAD))

    def load(self, source_config: SourceConfig) -> ds.Scanner:
        dataset = super().load(source_config)
        return dataset.scanner(batch_size=self.batch_rows, fragment_readahead=self.files_ahead,
                               batch_readahead=self.batches_ahead)
