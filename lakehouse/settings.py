"""Paths and settings of the project, in one place.

Every setting is an environment variable with a default. Resources get theirs through
``env_fields``: a variable that is set when the code location loads becomes a ``dg.EnvVar``, so
the Dagster UI shows which variable a value comes from (never the value of a secret); an unset
one leaves the field at its default (``dg.EnvVar`` on an unset variable fails the run).
"""

import json
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = PROJECT_DIR / "dbt_project"
# The dbt of this interpreter's environment, so an un-activated venv works too; else PATH's.
_VENV_DBT = Path(sys.executable).parent / "dbt"
DBT_EXECUTABLE = str(_VENV_DBT) if _VENV_DBT.exists() else (shutil.which("dbt") or "dbt")

DEFAULT_LAKE_ROOT = "data/lake"
DEFAULT_DUCKDB_PATH = "data/gold.duckdb"
DEFAULT_DOWNLOAD_DIR = "data/spool/downloads"

# Where the UI's code references link to: unset, they open the local files.
GIT_URL_ENV = "LAKEHOUSE_GIT_URL"  # e.g. https://github.com/<org>/lakehouse
GIT_BRANCH_ENV = "LAKEHOUSE_GIT_BRANCH"


def duckdb_path() -> Path:
    """The DuckDB file dbt builds the gold models in (``LAKEHOUSE_DUCKDB_PATH``), absolute."""
    return Path(os.environ.get("LAKEHOUSE_DUCKDB_PATH") or DEFAULT_DUCKDB_PATH).resolve()


def dbt_vars(lake_root: str, duckdb_file: Path, storage_options: Mapping[str, str]) -> list[str]:
    """The ``--vars`` argument of a dbt command: where the lake and the DuckDB file are, read by
    ``profiles.yml`` and the sources (``var('lakehouse_root')``...), plus the lake's storage
    options that are not secrets (endpoint, region). The credentials stay out of the command
    line (dagster-dbt logs it): dbt's delta-rs reads them from the environment dbt inherits."""
    from lakehouse.secrets import SECRET_OPTION_KEYS

    public = {k: v for k, v in storage_options.items() if k not in SECRET_OPTION_KEYS}
    return ["--vars", json.dumps({"lakehouse_root": lake_root,
                                  "lakehouse_duckdb_path": str(duckdb_file),
                                  "lakehouse_storage_options": public})]


def download_dir() -> Path:
    """Where partial downloads live between runs: ``$LAKEHOUSE_DOWNLOAD_DIR`` (default
    ``data/spool/downloads``), a local folder that survives the process."""
    return Path(os.environ.get("LAKEHOUSE_DOWNLOAD_DIR") or DEFAULT_DOWNLOAD_DIR).expanduser()


def movies_use_sample() -> dict[str, bool]:
    """The IMDB and MovieLens resources' ``use_sample``: ``LAKEHOUSE_MOVIES_SAMPLE=0`` asks for
    the real datasets even without their URL variables; else the field stays unset (the sample
    unless a URL is set). A plain value: ``dg.EnvVar`` only fills text fields."""
    return {"use_sample": False} if os.environ.get("LAKEHOUSE_MOVIES_SAMPLE") == "0" else {}


def telegram_mode() -> str:
    """``TELEGRAM_MODE``: ``polling`` (default) or ``webhook``, read when the code location loads."""
    return os.environ.get("TELEGRAM_MODE") or "polling"


def telegram_partitions_start(default: str) -> str:
    """``TELEGRAM_PARTITIONS_START``: the earliest day a Telegram message may have (older ones go
    to the quarantine), read when a bronze load runs."""
    return os.environ.get("TELEGRAM_PARTITIONS_START") or default


def git_url() -> str | None:
    return os.environ.get(GIT_URL_ENV) or None


def git_branch() -> str:
    return os.environ.get(GIT_BRANCH_ENV) or "main"


def env_fields(variables: Mapping[str, str]) -> dict[str, Any]:
    """``{field: variable}`` -> ``{field: dg.EnvVar(variable)}`` for the variables set now."""
    import dagster as dg  # the command line imports this module: Dagster only when needed

    return {name: dg.EnvVar(var) for name, var in variables.items() if os.environ.get(var)}


def env_values(variables: Mapping[str, str]) -> dict[str, str]:
    """``{field: variable}`` -> ``{field: value}`` for the variables set now: a resource built
    outside the code location (the command line, the demo) has no run to resolve a ``dg.EnvVar``."""
    return {name: os.environ[var] for name, var in variables.items() if os.environ.get(var)}
