"""Snapshot datasets (IMDB, MovieLens, CSV drops): each landed download is a version.

- The landing state of a spec (``<raw prefix>/.latest.json``, hidden so raw
  listings skip it) keeps the key, ETag, Last-Modified and sha256 of the last landed download:
  the next download is conditional on it, and an unchanged source lands nothing.
- A silver table records which raw version it was built from in its Delta commit metadata
  (``lakehouse.source``); when the landing state names the same version, the silver step is a
  no-op (no new Delta version). A new version replaces the table in one commit (time travel
  keeps the old one), streamed from a local copy of the raw file with Polars.

No Dagster here: the benchmark and tests use these functions directly.
"""

from __future__ import annotations

import gzip
import json
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable
from deltalake import Schema as DeltaSchema
from deltalake.transaction import AddAction, create_table_with_add_actions

from lakehouse.lake import table_docs
from lakehouse.lake.delta import append_replacing_sources, newest_data_commit, open_table
from lakehouse.lake.location import Lake, raw_key
from lakehouse.sources.imdb import Download, Previous, Progress
from lakehouse.transforms.imdb import QUARANTINE_SCHEMA

STATE_FILE = ".latest.json"
SOURCE_PROPERTY = "lakehouse.source"
QUARANTINE_TABLE = "movies_quarantine"


@dataclass(frozen=True)
class LandingState:
    key: str
    sha256: str
    size: int
    landed_at: str
    etag: str | None = None
    last_modified: str | None = None

    @property
    def prefix(self) -> str:
        """The raw prefix the file was landed under (its key without ``YYYY/MM/DD/<file>``)."""
        return self.key.rsplit("/", 4)[0]

    @property
    def version_tag(self) -> str:
        """What a silver table built from this version records: key and content hash."""
        return f"{self.key}@{self.sha256}"

    def previous(self) -> Previous:
        return Previous(self.etag, self.last_modified, self.sha256)


def state_key(prefix: str) -> str:
    """The landing state of the files landed under ``prefix`` (a ``raw_prefix``)."""
    return f"{prefix}/{STATE_FILE}"


def read_state(lake: Lake, prefix: str) -> LandingState | None:
    key = state_key(prefix)
    if not lake.exists(key):
        return None
    return LandingState(**json.loads(lake.read_bytes(key)))


@contextmanager
def gunzipped(path: Path) -> Iterator[Path]:
    """A temporary uncompressed copy of a gzip file, so Polars can scan it lazily."""
    with tempfile.TemporaryDirectory(prefix="lakehouse-gunzip-") as tmp:
        dest = Path(tmp) / path.name.removesuffix(".gz")
        with gzip.open(path, "rb") as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, 8 << 20)
        yield dest


Fetch = Callable[[Path, Previous], Download]


def land_snapshot(lake: Lake, prefix: str, filename: str, fetch: Fetch, day: date,
                  progress: Progress | None = None) -> tuple[LandingState | None, bool]:
    """Download a new version of one file (conditional on the last one) and land it unmodified
    under ``prefix`` (a ``raw_prefix``).

    Returns the current landing state and whether a new version was landed. Raw files are
    write-once: a second version on the same day gets its hash in the name.
    """
    previous = read_state(lake, prefix)
    with tempfile.TemporaryDirectory(prefix="lakehouse-dl-") as tmp:
        download = fetch(Path(tmp) / filename, previous.previous() if previous else Previous())
        if not download.changed or download.path is None:
            return previous, False
        key = raw_key(prefix, day, filename)
        if lake.exists(key):
            stem, dot, ext = filename.partition(".")
            key = raw_key(prefix, day, f"{stem}.{download.sha256[:12]}{dot}{ext}")
        if progress:
            progress(f"landing {key}")
        lake.put_file(key, download.path)
    state = LandingState(key=key, sha256=download.sha256 or "", size=download.size,
                         landed_at=datetime.now(UTC).isoformat(timespec="seconds"),
                         etag=download.etag, last_modified=download.last_modified)
    # The state is written last: a crash before it leaves a raw file and an old state, and the
    # next run lands the version again (same bytes, write-once key) and moves on.
    lake.write_bytes(state_key(prefix), json.dumps(asdict(state)).encode())
    return state, True


def commit_property(lake: Lake, uri: str, name: str) -> str | None:
    """A fact of the table's newest data commit (``write_snapshot_table``'s metadata).

    Once the log no longer holds that commit (it is kept ``LOG_RETENTION_HOURS``), the fact is
    the table's property of that name, which the upkeep copies from the newest data commit
    before it trims the log (``lakehouse.lake.maintenance``)."""
    table = open_table(lake, uri)
    if table is None:
        return None
    commit = newest_data_commit(table)
    if commit is not None:
        return commit.get(name)
    return table.metadata().configuration.get(name)


def built_from(lake: Lake, uri: str) -> str | None:
    """The raw version a silver table was last built from (its newest commit's metadata)."""
    return commit_property(lake, uri, SOURCE_PROPERTY)


def write_snapshot_table(lake: Lake, uri: str, frame: pl.LazyFrame, version_tag: str,
                         properties: dict[str, str] | None = None) -> None:
    """Replace the table with ``frame`` in one Delta commit, streaming (never whole in memory).

    ``properties`` are recorded in that commit's metadata beside the source version (a CSV
    drop's encoding): the facts of the table as it now is, read back with ``commit_property``.

    On a local lake Polars' own parallel Parquet writer streams the data file into the table
    folder and delta-rs commits it (an overwrite: the old files stay for time travel); that is
    about twice as fast as delta-rs encoding the batches itself, which the S3 path does.
    """
    commit = CommitProperties(custom_metadata={**(properties or {}), SOURCE_PROPERTY: version_tag})
    if lake.is_s3:
        frame.sink_delta(uri, mode="overwrite", storage_options=lake.storage_options or None,
                         delta_write_options={"schema_mode": "overwrite",
                                              "commit_properties": commit,
                                              **table_docs.creation_options(uri)})
        # Polars' sink writes no column comments and its overwrite resets the schema: one
        # metadata-only commit puts them back, carrying the same properties so that
        # built_from still reads this rebuild's source version from the newest commit.
        table_docs.document(uri, lake.storage_options, commit_properties=commit)
        return
    folder = Path(uri)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"part-00000-{uuid.uuid4()}-c000.zstd.parquet"
    path = folder / name
    frame.sink_parquet(path, compression="zstd", statistics=True)
    try:
        meta = pq.read_metadata(path)
        schema = table_docs.annotate_schema(uri, pq.read_schema(path))  # comments in this commit
        action = AddAction(path=name, size=path.stat().st_size, partition_values={},
                           modification_time=int(path.stat().st_mtime * 1000), data_change=True,
                           stats=json.dumps({"numRecords": meta.num_rows}))
        table = open_table(lake, uri)
        if table is None:
            create_table_with_add_actions(uri, DeltaSchema.from_arrow(schema), [action],
                                          mode="overwrite", commit_properties=commit,
                                          **table_docs.creation_options(uri))
        else:
            table.create_write_transaction([action], mode="overwrite", schema=schema,
                                           commit_properties=commit)
    except BaseException:
        path.unlink(missing_ok=True)  # an uncommitted file is never part of the table
        raise
    table_docs.document(uri, lake.storage_options, commit_properties=commit)


def write_quarantine(lake: Lake, rows: pl.DataFrame, source_file: str) -> int:
    """Replace the quarantined rows of ``source_file`` (idempotent per source file)."""
    uri = lake.table_uri("quarantine", QUARANTINE_TABLE)
    if rows.height == 0 and open_table(lake, uri) is None:
        return 0
    rows = rows.select([pl.col(c).cast(t) for c, t in QUARANTINE_SCHEMA.items()])
    append_replacing_sources(lake, uri, rows, [source_file])
    return rows.height


def delta_version(lake: Lake, uri: str) -> int | None:
    table = open_table(lake, uri)
    return None if table is None else table.version()


def table_versions(lake: Lake, uri: str) -> list[int]:
    table = DeltaTable(uri, storage_options=lake.storage_options or None)
    return sorted(h["version"] for h in table.history())
