"""`make demo`: every asset materialized on the built-in sample data, then a look at the result.

Each domain folder may offer ``lakehouse/defs/<domain>/demo.py`` with
``materialize_sample(instance)`` (raw, bronze, silver on its sample backend) and
``summary(lake) -> str``; the gold dbt models are then built once for all domains.
"""

import importlib
import logging
import os
import pkgutil
import sys
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


def main() -> int:
    logging.getLogger("dagster").setLevel(logging.WARNING)
    lake = Lake.from_env()
    definitions = defs()
    # With DAGSTER_HOME (set by the Makefile) the runs show up later in `make dev`.
    instance = (dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME")
                else dg.DagsterInstance.ephemeral())
    demos = domain_demos()
    for demo in demos:
        print(f"== {demo.__name__.split('.')[-2]}: sample data to silver", flush=True)
        demo.materialize_sample(instance)
    print("== gold: dbt build, landed as Delta", flush=True)
    result = dg.materialize([gold_dbt_models], instance=instance,
                            resources=definitions.resources, raise_on_error=True)
    print(f"gold run {result.run_id}: ok" if result.success else "gold run failed")
    print(f"\nThe lake is at {lake.root}:")
    for layer in ("bronze", "silver", "gold", "quarantine"):
        tables = sorted({k.split("/")[1] for k in lake.list_keys(layer) if "/_delta_log/" in k})
        print(f"  {layer}/: {', '.join(tables) if tables else '-'}")
    for demo in demos:
        print()
        print(demo.summary(lake))
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
