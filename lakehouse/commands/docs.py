"""``lakehouse docs [--port P]``: generate the dbt docs of the gold models and serve them on localhost.

``dbt docs generate --static`` gives one self-contained page (manifest and catalog inside). The
generation runs apart from the pipeline's dbt: its own target folder (``dbt_project/target/docs``,
so the manifest Dagster reads is never rewritten) and its own copy of the gold DuckDB file (DuckDB
allows one writer per file, and compiling the models loads every silver source into the file).

Compiling needs every silver Delta source to exist (dbt-duckdb's delta plugin loads a source when a
model names it). When one is missing, or compiling fails, the docs are still generated without
compiling: every model with its description and columns, without compiled SQL; the catalog then
comes from the copy of the gold DuckDB file (the column types of the models built so far), or is
empty when even that cannot be read.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from deltalake import DeltaTable

from lakehouse import catalog as lake_catalog
from lakehouse.lake.location import Lake
from lakehouse.serving import serve_until_stopped
from lakehouse.settings import DBT_EXECUTABLE, DBT_PROJECT_DIR, dbt_vars, duckdb_path

log = logging.getLogger("lakehouse.docs")

DEFAULT_TARGET = DBT_PROJECT_DIR / "target" / "docs"
# Only these files of the target folder are served (it also holds the DuckDB copy).
SERVED = {"/": "static_index.html", "/index.html": "static_index.html",
          "/static_index.html": "static_index.html", "/manifest.json": "manifest.json",
          "/catalog.json": "catalog.json"}


@dataclass(frozen=True)
class DocsBuild:
    page: Path
    compiled: bool
    catalog: str  # "full", "built models" or "empty"
    missing_sources: list[str]


def _dbt(args: list[str], target: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [DBT_EXECUTABLE, *args, "--project-dir", str(DBT_PROJECT_DIR),
               "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(target),
               "--log-path", str(target / "logs")]
    log.info("running dbt %s", " ".join(args))
    return subprocess.run(command, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True)


def _error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in (result.stdout + result.stderr).splitlines()
             if "Error" in line or "error" in line]
    return lines[-1] if lines else f"exit code {result.returncode}"


def _missing_sources(manifest_path: Path, lake: Lake) -> list[str]:
    """The Delta sources of the manifest (those with a ``delta_table_path``: dbt-duckdb's delta
    plugin loads every one of them, read by a model or not) that have no Delta table yet."""
    manifest: dict[str, Any] = json.loads(manifest_path.read_text())
    missing = []
    for source in manifest.get("sources", {}).values():
        meta = source.get("meta") or source.get("config", {}).get("meta") or {}
        path = meta.get("delta_table_path")
        if path and not DeltaTable.is_deltatable(path, storage_options=lake.storage_options or None):
            missing.append(f"{source['source_name']}.{source['name']}")
    return sorted(missing)


def _fresh_duckdb_copy(target: Path) -> tuple[Path, bool]:
    """A private DuckDB file for the docs run: a copy of the gold file when there is one."""
    copy = target / "docs.duckdb"
    for stale in (copy, copy.with_name(copy.name + ".wal")):
        stale.unlink(missing_ok=True)
    gold = duckdb_path()
    if not gold.exists():
        return copy, False
    shutil.copyfile(gold, copy)
    wal = gold.with_name(gold.name + ".wal")
    if wal.exists():
        shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
    return copy, True


def _without_local_paths(target: Path, lake: Lake) -> None:
    """The generated docs name the lake ``$LAKEHOUSE_ROOT`` and the compiled files
    ``target/docs/...``: rendered source paths and the target folder are this machine's absolute
    paths, which tell a reader of the docs nothing and should not be published."""
    replacements = [(f'"{target}/', '"target/docs/'), (f'"{lake.root.rstrip("/")}/', '"$LAKEHOUSE_ROOT/')]
    for name in ("static_index.html", "manifest.json", "catalog.json"):
        path = target / name
        if path.exists():
            text = path.read_text()
            for old, new in replacements:
                text = text.replace(old, new)
            path.write_text(text)


def generate_docs(lake: Lake, target: Path = DEFAULT_TARGET, compile_models: bool = True) -> DocsBuild:
    """Run ``dbt docs generate --static``, falling back as the module docstring says."""
    build = _generate(lake, target.resolve(), compile_models)
    _without_local_paths(target.resolve(), lake)
    return build


def _generate(lake: Lake, target: Path, compile_models: bool) -> DocsBuild:
    target.mkdir(parents=True, exist_ok=True)
    (target / "static_index.html").unlink(missing_ok=True)
    duckdb_copy, have_gold = _fresh_duckdb_copy(target)
    # The lake's storage options go to dbt's environment, not its --vars: the published
    # docs would carry them otherwise.
    env = {**os.environ, **lake.storage_options, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    settings = dbt_vars(lake.root, duckdb_copy, {})

    parsed = _dbt(["parse", *settings], target, env)
    if parsed.returncode != 0:
        raise RuntimeError(f"dbt parse failed: {_error_line(parsed)}")
    missing = _missing_sources(target / "manifest.json", lake)

    if compile_models and not missing:
        full = _dbt(["docs", "generate", "--static", *settings], target, env)
        if full.returncode == 0:
            return DocsBuild(target / "static_index.html", True, "full", [])
        log.warning("compiling the models failed (%s); generating without compiling", _error_line(full))
        _fresh_duckdb_copy(target)
        _dbt(["parse", *settings], target, env)  # the failed run may have left no manifest behind
    elif missing:
        log.warning("silver tables missing (%s): generating without compiling", ", ".join(missing))

    # --no-compile reads target/manifest.json, which the parse above wrote.
    attempts = [(["--no-compile"], "built models" if have_gold else "empty"),
                (["--no-compile", "--empty-catalog"], "empty")]
    for flags, catalog in attempts:
        result = _dbt(["docs", "generate", "--static", *flags, *settings], target, env)
        if result.returncode == 0 and (target / "static_index.html").exists():
            return DocsBuild(target / "static_index.html", False, catalog, missing)
        log.warning("dbt docs generate %s failed: %s", " ".join(flags), _error_line(result))
    raise RuntimeError(f"dbt docs generate failed: {_error_line(result)}")


class DocsServer(ThreadingHTTPServer):
    """Serves the generated docs page (and its manifest and catalog) from ``target``."""

    daemon_threads = True

    def __init__(self, target: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), partial(_DocsHandler, directory=str(target)))

    @property
    def url(self) -> str:
        return f"http://{self.server_address[0]}:{self.server_address[1]}/"


class _DocsHandler(SimpleHTTPRequestHandler):
    def _served(self) -> bool:
        name = SERVED.get(self.path.split("?", 1)[0].split("#", 1)[0])
        if name is None:
            self.send_error(HTTPStatus.NOT_FOUND)
            return False
        self.path = "/" + name
        return True

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self._served():
            super().do_GET()

    def do_HEAD(self) -> None:  # noqa: N802
        if self._served():
            super().do_HEAD()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        log.debug("%s " + format, self.address_string(), *args)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "docs", help="Generate the dbt docs of the gold models and serve them on localhost.",
        description="Run `dbt docs generate --static` on dbt_project and serve the page.")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--target-path", type=Path, default=DEFAULT_TARGET,
                        help="where the docs are generated (default dbt_project/target/docs)")
    parser.add_argument("--no-compile", dest="compile_models", action="store_false",
                        help="skip compiling the models (faster; no compiled SQL in the docs)")
    parser.add_argument("--no-serve", dest="serve", action="store_false",
                        help="only generate, print the page's path and exit")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    lake = lake_catalog.lake()  # LAKEHOUSE_ROOT, else the project's data/lake wherever this runs
    try:
        build = generate_docs(lake, args.target_path, args.compile_models)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    note = "compiled" if build.compiled else "not compiled"
    if build.missing_sources:
        note += f"; {len(build.missing_sources)} silver tables missing"
    print(f"docs generated at {build.page} ({note}; catalog: {build.catalog})", flush=True)
    if not args.serve:
        return 0
    server = DocsServer(args.target_path.resolve(), args.host, args.port)
    print(f"docs on {server.url}", flush=True)
    serve_until_stopped(server, log)
    return 0
