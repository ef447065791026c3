"""A load's Delta bookkeeping does not import pandas (0.6 s a process that never uses it)."""

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
import polars as pl
from lakehouse.lake.delta import append_replacing_sources, row_count
from lakehouse.lake.location import Lake
from lakehouse.lake.maintenance import active_files

lake = Lake.from_env(sys.argv[1])
uri = lake.table_uri("bronze", "things")
frame = pl.DataFrame({"_source_file": ["raw/a.ndjson"], "n": [1]})
table = append_replacing_sources(lake, uri, frame, ["raw/a.ndjson"])
# Nothing to add for a source the table does not hold: answered from the files' statistics.
append_replacing_sources(lake, uri, frame.clear(), ["raw/b.ndjson"])
assert row_count(table) == 1 and active_files(table).files == 1
print("pandas" in sys.modules)
"""


def test_delta_bookkeeping_leaves_pandas_unimported(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"
