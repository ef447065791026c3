"""Self-describing Delta tables: each table carries its name, description and column comments.

The catalogue is the dbt project (``dbt_project/models/*/_*.yml``, read from the manifest that
``dbt parse`` writes): gold models are its models, and every bronze, silver and quarantine table is
declared there as a source whose ``schema`` is its layer. So the dbt docs, Dagster and any Delta
reader (delta-rs, Spark, DuckDB, Polars through ``DeltaTable``) show the same words.

Where the words go in the Delta log: the table's ``metaData`` action holds ``name``
(``<layer>.<table>``) and ``description``; each top-level field of its schema holds a ``comment``
in its metadata, as Spark's ``COMMENT`` does.

Writes keep them cheaply: the commit that creates a table names, describes and comments it, and
``annotate`` puts the comments on the Arrow data of every later write (delta-rs' schema merge and
overwrite take a field's metadata from the data), so a new column is commented in the commit that
adds it. ``document`` then looks at the table the write left (no second read of the log) and
commits only what still differs (a table created before its docs existed, or docs edited since):
the comments in one metadata-only commit, then the name and the description.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, write_deltalake

log = logging.getLogger(__name__)

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
# Overridable so a deployment can point at the manifest it ships (dagster-dbt's own path).
MANIFEST_ENV = "LAKEHOUSE_DBT_MANIFEST"
DOC_LAYERS = ("bronze", "silver", "gold", "quarantine")


@dataclass(frozen=True)
class TableDoc:
    """What a Delta table says about itself."""

    name: str  # "<layer>.<table>", the name `lakehouse sql` and the catalog use
    description: str
    columns: dict[str, str] = field(default_factory=dict)


def manifest_path() -> Path:
    return Path(os.environ.get(MANIFEST_ENV) or DBT_PROJECT_DIR / "target" / "manifest.json")


_cache: dict[str, Any] = {"key": None, "docs": {}}


def _clean(text: str | None) -> str:
    return " ".join((text or "").split())


def catalogue() -> dict[str, TableDoc]:
    """``{"<layer>.<table>": TableDoc}`` from the dbt manifest (cached until the file changes).

    Without a manifest (``dbt parse`` never ran) there are no docs and writes go on unchanged.
    """
    path = manifest_path()
    try:
        stat = path.stat()
    except FileNotFoundError:
        return {}
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if _cache["key"] != key:
        _cache["docs"] = _read_manifest(json.loads(path.read_text()))
        _cache["key"] = key
    return _cache["docs"]


def _read_manifest(manifest: dict[str, Any]) -> dict[str, TableDoc]:
    docs: dict[str, TableDoc] = {}
    for source in manifest.get("sources", {}).values():
        layer = source.get("schema")
        if layer in DOC_LAYERS:
            docs[f"{layer}.{source['name']}"] = _doc(f"{layer}.{source['name']}", source)
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") == "model":
            docs[f"gold.{node['name']}"] = _doc(f"gold.{node['name']}", node)
    return docs


def _doc(name: str, node: dict[str, Any]) -> TableDoc:
    columns = {col: _clean(spec.get("description")) for col, spec in node.get("columns", {}).items()
               if _clean(spec.get("description"))}
    return TableDoc(name, _clean(node.get("description")), columns)


def doc_for_uri(uri: str) -> TableDoc | None:
    """The docs of the table at ``<root>/<layer>/<table>``, if the catalogue has them."""
    parts = uri.rstrip("/").split("/")
    if len(parts) < 2:
        return None
    return catalogue().get(f"{parts[-2]}.{parts[-1]}")


def _with_comments(schema: pa.Schema, doc: TableDoc) -> pa.Schema:
    fields = []
    for f in schema:
        comment = doc.columns.get(f.name)
        if comment:
            f = f.with_metadata({**(f.metadata or {}), b"comment": comment.encode()})
        fields.append(f)
    return pa.schema(fields, metadata=schema.metadata)


def annotate_schema(uri: str, schema: pa.Schema) -> pa.Schema:
    """``schema`` with the table's column comments in its field metadata."""
    doc = doc_for_uri(uri)
    return schema if doc is None else _with_comments(schema, doc)


def annotate(uri: str, data: pa.Table) -> pa.Table:
    """``data`` with the table's column comments in its field metadata (for whole-table writes)."""
    return data.cast(annotate_schema(uri, data.schema))


def creation_options(uri: str) -> dict[str, str]:
    """``name`` and ``description`` for ``write_deltalake`` when it creates the table."""
    doc = doc_for_uri(uri)
    if doc is None:
        return {}
    return {"name": doc.name, **({"description": doc.description} if doc.description else {})}


def document(uri: str, storage_options: dict[str, str] | None = None,
             doc: TableDoc | None = None, commit_properties: CommitProperties | None = None,
             table: DeltaTable | None = None) -> bool:
    """Bring the table's name, description and column comments in line
    with ``doc`` (default: the catalogue's entry for ``uri``). Returns whether anything was committed.

    ``table``: the table as the caller's write left it, so its log is not read again; nothing is
    committed when it already says what ``doc`` says. ``commit_properties`` go on each docs
    commit, for writers that read their own facts back from the newest commit (the movie
    snapshots' source version).
    """
    doc = doc or doc_for_uri(uri)
    if doc is None:
        return False
    if table is None:
        table = DeltaTable(uri, storage_options=storage_options or None)
    changed = False
    schema = pa.schema(table.schema().to_arrow())
    wanted = _with_comments(schema, doc)
    if not wanted.equals(schema, check_metadata=True):
        # A metadata-only commit: an overwrite matching no row, with the same types, whose schema
        # carries the comments (delta-rs' set_column_metadata would take one commit per column).
        write_deltalake(table, wanted.empty_table(), mode="overwrite", predicate="1 = 0",
                        schema_mode="overwrite", storage_options=storage_options or None,
                        commit_properties=commit_properties)
        table.update_incremental()
        changed = True
    meta = table.metadata()
    if meta.name != doc.name:
        table.alter.set_table_name(doc.name, commit_properties=commit_properties)
        changed = True
    if doc.description and meta.description != doc.description:
        table.alter.set_table_description(doc.description, commit_properties=commit_properties)
        changed = True
    if changed:
        log.debug("documented %s", doc.name)
    return changed


def column_comments(table: DeltaTable) -> dict[str, str]:
    """The ``comment`` of each top-level column that has one."""
    return {f.name: f.metadata["comment"] for f in table.schema().fields
            if f.metadata and f.metadata.get("comment")}
