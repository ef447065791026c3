"""The one entry point of the code location (``workspace.yaml`` and ``[tool.dg]`` point here):
every module of ``lakehouse/defs/`` loaded, then the project-wide UI metadata applied."""

import contextlib
import hashlib
import importlib.metadata
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg

from lakehouse.defs.ui import with_ui_metadata

# Where the catalogue of installed component types is kept between loads (see _component_types).
CACHE_DIR_ENV = "LAKEHOUSE_CACHE_DIR"


@dg.definitions
def defs() -> dg.Definitions:
    with _cached_component_types():
        loaded = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    return with_ui_metadata(loaded)


def _cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lakehouse"
    return Path(os.environ.get(CACHE_DIR_ENV) or default)


def _component_libraries() -> list[list[str]]:
    """What the catalogue of component types is computed from: each component library's entry
    point and its installed files (their hashes are in its RECORD, which every install rewrites)."""
    from dagster.components.core.package_entry import get_plugin_entry_points

    libraries = [["dagster", importlib.metadata.version("dagster")]]
    for entry_point in get_plugin_entry_points():
        dist = entry_point.dist
        record = (dist.read_text("RECORD") or "") if dist is not None else ""
        libraries.append([entry_point.group, entry_point.name, entry_point.value,
                          dist.name if dist else "", dist.version if dist else "",
                          hashlib.sha256(record.encode()).hexdigest()])
    return libraries


def _component_types(tree: Any, compute: Any) -> dg.Definitions:
    """Dagster's catalogue of the installed component types (repository metadata the UI lists
    component types from), computed once per set of installed libraries instead of on every
    load: computing it imports every component library (dagster-aws's pulls in boto3 and
    Dagster's storage and daemon modules) and derives a JSON schema per component type, about
    a second on two cores, while it changes only when a library is installed or upgraded."""
    from dagster.components.core.load_defs import PLUGIN_COMPONENT_TYPES_JSON_METADATA_KEY

    key = json.dumps(_component_libraries(), sort_keys=True)
    path = _cache_dir() / f"component-types-{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"
    try:
        cached = json.loads(path.read_text())
        if cached.get("key") == key:
            return dg.Definitions(
                metadata={PLUGIN_COMPONENT_TYPES_JSON_METADATA_KEY: cached["component_types"]},
                component_tree=tree)
    except (OSError, ValueError, AttributeError):
        pass  # not computed yet (or unreadable): computed below
    computed = compute(tree)
    entry = computed.metadata.get(PLUGIN_COMPONENT_TYPES_JSON_METADATA_KEY)
    value = getattr(entry, "value", entry)
    with contextlib.suppress(OSError, TypeError, ValueError):  # a read-only home: not kept
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False,
                                         suffix=".tmp") as out:
            json.dump({"key": key, "component_types": value}, out)
        os.replace(out.name, path)  # whole or absent, for concurrent loads
    return computed


@contextlib.contextmanager
def _cached_component_types() -> Iterator[None]:
    """``load_from_defs_folder`` with ``_component_types`` in place of Dagster's computation
    (which its root component calls by this module attribute). A Dagster without that function
    computes the catalogue its own way."""
    from dagster.components.core import load_defs

    compute = getattr(load_defs, "get_library_json_enriched_defs", None)
    if compute is None:
        yield
        return
    load_defs.get_library_json_enriched_defs = lambda tree: _component_types(tree, compute)
    try:
        yield
    finally:
        load_defs.get_library_json_enriched_defs = compute
