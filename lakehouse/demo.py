"""`make demo`: every asset materialized on the built-in sample data, then a look at the result.

Each domain folder may offer ``lakehouse/defs/<domain>/demo.py`` with
``materialize_sample(instance)`` (raw, bronze, silver on its sample backend) and
``summary(lake) -> str``; the gold dbt models are then built once for all domains.
"""

import importlib
import os
import pkgutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import dagster as dg

import lakehouse.defs
from lakehouse.definitions import defs
from lakehouse.defs.gold.assets import gold_dbt_models
from lakehouse.lake.location import Lake


def domain_demos() -> list[ModuleType]:
    modules = []
    for info in sorted(pkgutil.iter_modules(lakehouse.defs.__path__), key=lambda m: m.name):
        if info.ispkg:
            try:
                modules.append(importlib.import_module(f"lakehouse.defs.{info.name}.demo"))
            except ModuleNotFoundError as exc:
                if exc.name != f"lakehouse.defs.{info.name}.demo":
                    raise
    return modules


@contextmanager
def run_logs_to(path: Path) -> Iterator[None]:
    """Send everything the runs print (Dagster's event log, dbt's output) to ``path``.

    File descriptors are redirected, not just ``sys.stdout``, because loggers and the dbt
    subprocess hold their own handles.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def main() -> int:
    lake = Lake.from_env()
    log_path = Path(os.environ.get("LAKEHOUSE_DEMO_LOG", "data/demo.log")).resolve()
    definitions = defs()
    # With DAGSTER_HOME (set by the Makefile) the runs show up later in `make dev`.
    instance = (dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME")
                else dg.DagsterInstance.ephemeral())
    demos = domain_demos()
    print(f"Run logs (Dagster events, dbt output): {log_path}", flush=True)
    for demo in demos:
        print(f"== {demo.__name__.split('.')[-2]}: sample data to silver", flush=True)
        with run_logs_to(log_path):
            demo.materialize_sample(instance)
    print("== gold: dbt build (models and tests), each model landed as Delta", flush=True)
    with run_logs_to(log_path):
        result = dg.materialize([gold_dbt_models], instance=instance,
                                resources=definitions.resources, raise_on_error=False)
    print(f"gold run {result.run_id}: {'ok' if result.success else 'FAILED, see the run log'}")
    print(f"\nThe lake is at {lake.root}:")
    for layer in ("bronze", "silver", "gold", "quarantine"):
        tables = lake.delta_tables(layer)
        print(f"  {layer}/: {', '.join(tables) if tables else '-'}")
    for demo in demos:
        print()
        print(demo.summary(lake))
    print("\nNext: `make dev` for the Dagster UI (http://127.0.0.1:3000), `make docs` for the dbt "
          "docs, `.venv/bin/lakehouse sql \"select * from gold.telegram_messages_per_day\"`.")
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
