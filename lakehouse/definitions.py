"""The one entry point of the code location (``workspace.yaml`` and ``[tool.dg]`` point here):
every module of ``lakehouse/defs/`` loaded, then the project-wide UI metadata applied."""

from pathlib import Path

import dagster as dg

from lakehouse.defs.ui import with_ui_metadata


@dg.definitions
def defs() -> dg.Definitions:
    return with_ui_metadata(dg.load_from_defs_folder(path_within_project=Path(__file__).parent))
