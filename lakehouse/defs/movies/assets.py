"""Movie assets: IMDB and MovieLens snapshots, CSV drops, TMDB enrichment, to silver Delta.

Raw assets land what the source has (a no-op when it is unchanged); silver assets rebuild a
table only when the landed version differs from the one it was built from. The work lives in
``snapshots.py``/``silver.py``/``tmdb.py`` and the pure transforms; these bodies only wire it.
"""


from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from lakehouse.defs.movies.checks import SILVER_TABLES
from lakehouse.defs.specs import DELTA_KINDS, delta_table_spec
from lakehouse.lake.delta import delta_metadata, open_table, scan
from lakehouse.lake.ledger import Ledger
from lakehouse.lake.location import Lake, raw_prefix
from lakehouse.lake.resource import LakeResource
from lakehouse.lake.snapshots import (
    QUARANTINE_TABLE,
    built_from,
    commit_property,
    land_snapshot,
    read_state,
    write_quarantine,
    write_snapshot_table,
)
from lakehouse.load.movies import (
    MOVIELENS_SILVER,
    SilverOutcome,
    UnreadableRawFile,
    build_imdb_table,
    build_movielens_tables,
)
from lakehouse.load.tmdb import RAW_ANSWERS, REQUEST_LOG, TMDB_SILVER, build_tmdb_silver, enrich
from lakehouse.secrets import redact_metadata
from lakehouse.sources.csv_drop import (
    RAW_FILE,
    CsvDropResource,
    DropClash,
    DropFile,
    prepared_drop,
    sha256_file,
)
from lakehouse.sources.imdb import Download, ImdbResource, Previous
from lakehouse.sources.movielens import RAW_RELEASE, MovieLensResource
from lakehouse.sources.tmdb import TmdbResource
from lakehouse.transforms.csv_drop import CSV_NULL_VALUES, csv_drop_table, rejected_records
from lakehouse.transforms.imdb import IMDB_TABLES, ImdbTable

GROUP = "movies"
csv_drop_partitions = dg.DynamicPartitionsDefinition(name="movies_csv_drop")
CSV_DROP_LEDGER = ("silver", "csv_drop")  # drop files whose content silver holds
ENCODING_PROPERTY = "lakehouse.encoding"  # a CSV drop table's source encoding, per commit


def _today() -> Any:
    return datetime.now(UTC).date()


def _table_facts(lake: Lake, uri: str, **extra: Any) -> dict[str, Any]:
    preview = scan(lake, uri).head(10).collect()
    return redact_metadata({**delta_metadata(lake, uri, preview), **extra})


def _outcome_facts(lake: Lake, outcome: SilverOutcome) -> dict[str, Any]:
    return _table_facts(lake, outcome.uri, changed=outcome.changed, raw_file=outcome.source,
                        quarantined_rows=outcome.quarantined)


def _landing_facts(state: Any, changed: bool) -> dict[str, Any]:
    if state is None:
        return {"changed": changed}
    return redact_metadata({"changed": changed, "raw_file": state.key, "sha256": state.sha256,
                            "bytes": state.size, "etag": state.etag or "",
                            "landed_at": state.landed_at})


# -- IMDB ------------------------------------------------------------------------------------

def imdb_raw_key(table: ImdbTable) -> dg.AssetKey:
    return dg.AssetKey(table.raw_asset)


@dg.multi_asset(
    name="imdb_raw",
    specs=[dg.AssetSpec(imdb_raw_key(t), group_name=GROUP, kinds={"http", "file"},
                        description=f"IMDB {t.filename} as downloaded (gzip TSV), one landed "
                        "file per changed release.") for t in IMDB_TABLES],
    can_subset=True,
)
def imdb_raw(context: dg.AssetExecutionContext, lake: LakeResource,
             imdb: ImdbResource) -> Any:
    """Conditional download of each selected IMDB dataset; unchanged files land nothing."""
    the_lake, source = lake.lake(), imdb.source()
    for table in IMDB_TABLES:
        key = imdb_raw_key(table)
        if key not in context.selected_asset_keys:
            continue
        def fetch(dest: Path, previous: Previous, name: str = table.filename) -> Download:
            return source.fetch(name, dest, previous, context.log.info)
        state, changed = land_snapshot(the_lake, raw_prefix(table.raw_asset), table.filename,
                                       fetch, _today(), context.log.info)
        yield dg.MaterializeResult(asset_key=key, metadata=_landing_facts(state, changed))


def _imdb_silver_asset(table: ImdbTable) -> dg.AssetsDefinition:
    @dg.asset(key=["silver", table.table], deps=[imdb_raw_key(table)], group_name=GROUP,
              kinds=DELTA_KINDS, description=table.transform.__doc__,
              tags={"movies/source": "imdb"})
    def _silver(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        the_lake = lake.lake()
        state = read_state(the_lake, raw_prefix(table.raw_asset))
        if state is None:
            raise dg.Failure(f"no {table.filename} landed yet: materialize "
                             f"{imdb_raw_key(table).to_user_string()} first")
        try:
            outcome = build_imdb_table(the_lake, table, state, context.log.info)
        except UnreadableRawFile as unreadable:
            raise dg.Failure(str(unreadable), metadata={"raw_file": unreadable.key},
                             allow_retries=False) from None
        return dg.MaterializeResult(metadata=_outcome_facts(the_lake, outcome))
    return _silver


imdb_silver_assets = [_imdb_silver_asset(t) for t in IMDB_TABLES]


# -- MovieLens -------------------------------------------------------------------------------

MOVIELENS_RAW = dg.AssetKey(RAW_RELEASE)


@dg.asset(key=MOVIELENS_RAW, group_name=GROUP, kinds={"http", "file"})
def movielens_raw(context: dg.AssetExecutionContext, lake: LakeResource,
                  movielens: MovieLensResource) -> dg.MaterializeResult:
    """The MovieLens release zip as downloaded, checked against its published md5."""
    the_lake, release = lake.lake(), movielens.release()
    source = movielens.source()
    filename = f"{release}.zip"

    def fetch(dest: Path, previous: Previous) -> Download:
        return source.fetch(filename, dest, previous, context.log.info)

    state, changed = land_snapshot(the_lake, raw_prefix(RAW_RELEASE, release), filename, fetch,
                                   _today(), context.log.info)
    return dg.MaterializeResult(metadata={**_landing_facts(state, changed), "release": release})


@dg.multi_asset(
    name="movielens_silver",
    specs=[delta_table_spec(["silver", name], GROUP,
                            deps=[["silver", "movielens_tags"]] if name == "movielens_tag_counts"
                            else [MOVIELENS_RAW], tags={"movies/source": "movielens"},
                            description=SILVER_TABLES[name].description)
           for name in MOVIELENS_SILVER],
    can_subset=True,
)
def movielens_silver(context: dg.AssetExecutionContext, lake: LakeResource,
                     movielens: MovieLensResource) -> Any:
    """The landed release zip to movies, ratings, tags, tag counts and links."""
    the_lake, release = lake.lake(), movielens.release()
    state = read_state(the_lake, raw_prefix(RAW_RELEASE, release))
    if state is None:
        raise dg.Failure(f"no {release}.zip landed yet: materialize raw/movielens/release first")
    wanted = {k.path[-1] for k in context.selected_asset_keys}
    try:
        outcomes = build_movielens_tables(the_lake, state, wanted, context.log.info)
    except UnreadableRawFile as unreadable:
        raise dg.Failure(str(unreadable), metadata={"raw_file": unreadable.key},
                         allow_retries=False) from None
    for outcome in outcomes:
        yield dg.MaterializeResult(asset_key=dg.AssetKey(["silver", outcome.table]),
                                   metadata=_outcome_facts(the_lake, outcome))


CSV_DROP_RAW = dg.AssetKey(RAW_FILE)
CSV_DROP_SILVER = dg.AssetKey(["silver", "csv_drops"])


# -- CSV drop ----------------------------------------------------------------------------------

@dg.asset(key=CSV_DROP_RAW, partitions_def=csv_drop_partitions, group_name=GROUP,
          kinds={"file", "csv"})
def csv_drop_raw(context: dg.AssetExecutionContext, lake: LakeResource,
                 csv_drop: CsvDropResource) -> dg.MaterializeResult:
    """A file of the drop folder landed unmodified at raw/csv_drop/file/<spec>/YYYY/MM/DD/<file>
    (partition: the spec, the file's snake-cased stem). An unchanged file lands nothing; two
    files with the same spec fail the run, naming both, and land nothing."""
    spec = context.partition_key
    try:
        dropped = csv_drop.find(spec)
    except DropClash as clash:
        raise dg.Failure(str(clash), allow_retries=False) from None
    if dropped is None:
        raise dg.Failure(f"no file for {spec!r} in {csv_drop.folder()}")
    sha = sha256_file(dropped.path)

    def fetch(dest: Path, previous: Previous) -> Download:
        # The dropped file itself is the download: it is copied to the lake, never modified.
        return Download(sha != previous.sha256, dropped.path, sha256=sha, size=dropped.size)

    state, changed = land_snapshot(lake.lake(), raw_prefix(RAW_FILE, spec), dropped.name, fetch,
                                   _today(), context.log.info)
    return dg.MaterializeResult(metadata=_landing_facts(state, changed))


@dg.asset(key=CSV_DROP_SILVER, deps=[CSV_DROP_RAW],
          partitions_def=csv_drop_partitions, group_name=GROUP, kinds=DELTA_KINDS)
def csv_drop_silver(context: dg.AssetExecutionContext, lake: LakeResource,
                    csv_drop: CsvDropResource) -> dg.MaterializeResult:
    """The landed CSV of a partition to its own table ``silver/csv_<spec>``: encoding, delimiter
    and header detected, columns snake-cased, text trimmed, duplicate lines dropped. Records
    with more or fewer fields than the header go to the movies quarantine with their line
    number; the encoding read is recorded in the table's commit (``lakehouse.encoding``)."""
    the_lake, spec = lake.lake(), context.partition_key
    state = read_state(the_lake, raw_prefix(RAW_FILE, spec))
    if state is None:
        raise dg.Failure(f"nothing landed for {spec!r}: materialize raw/csv_drop/file first")
    table = f"csv_{spec}"
    uri = the_lake.table_uri("silver", table)
    if built_from(the_lake, uri) == state.version_tag:
        context.log.info(f"{table}: already built from {state.key}; nothing to do")
        _record_drop_loaded(the_lake, csv_drop, spec, state.sha256)
        return dg.MaterializeResult(metadata=_table_facts(
            the_lake, uri, changed=False, raw_file=state.key,
            encoding=commit_property(the_lake, uri, ENCODING_PROPERTY) or ""))
    with the_lake.local_copy(state.key) as path, \
            prepared_drop(path, csv_drop.declared_encoding()) as drop:
        dialect = drop.dialect
        context.log.info(f"{state.key}: encoding {drop.encoding.name} ({drop.encoding.how}), "
                         f"delimiter {dialect.delimiter!r}, "
                         f"header {'yes' if dialect.has_header else 'no'}, {drop.fields} fields, "
                         f"{len(drop.rejected)} records set aside")
        # The quarantine first: a table built from this version is never loaded again.
        quarantined = write_quarantine(the_lake, rejected_records(
            drop.rejected, source_file=state.key, table=table), state.key)
        raw = pl.scan_csv(drop.path, separator=dialect.delimiter, has_header=dialect.has_header,
                          quote_char=dialect.quote_char, null_values=CSV_NULL_VALUES,
                          infer_schema_length=None, raise_if_empty=False)
        write_snapshot_table(the_lake, uri, csv_drop_table(raw), state.version_tag,
                             {ENCODING_PROPERTY: drop.encoding.name})
    _record_drop_loaded(the_lake, csv_drop, spec, state.sha256)
    return dg.MaterializeResult(metadata=_table_facts(
        the_lake, uri, changed=True, raw_file=state.key, delimiter=dialect.delimiter,
        has_header=dialect.has_header, table=table, encoding=drop.encoding.name,
        encoding_detected_by=drop.encoding.how, records_loaded=drop.records,
        quarantined_rows=quarantined))


def drop_identity(dropped: DropFile) -> str:
    """What the CSV drop ledger holds for a dropped file: its name and cheap fingerprint."""
    return f"{dropped.name}:{dropped.fingerprint}"


def _record_drop_loaded(lake: Lake, csv_drop: CsvDropResource, spec: str, sha256: str) -> None:
    """Record the dropped file in the ledger once its content is the one silver holds (a file
    rewritten since it was landed stays unrecorded, so the sensor asks for it again)."""
    try:
        dropped = csv_drop.find(spec)
    except DropClash:
        return
    if dropped is not None and sha256_file(dropped.path) == sha256:
        Ledger(lake, *CSV_DROP_LEDGER).record([drop_identity(dropped)])


QUARANTINE_KEY = dg.AssetKey(["quarantine", QUARANTINE_TABLE])


# -- TMDB ------------------------------------------------------------------------------------

TMDB_RAW = dg.AssetKey(RAW_ANSWERS)
TMDB_REQUEST_LOG = dg.AssetKey(["bronze", REQUEST_LOG])


class TmdbRunConfig(dg.Config):
    """How much one run asks: the resource's per-run budget, or the whole backlog."""

    backlog: bool = False
    max_titles: int | None = None


@dg.multi_asset(
    name="tmdb_raw",
    specs=[
        dg.AssetSpec(TMDB_RAW, group_name=GROUP, kinds={"http", "json"},
                     deps=[["silver", "movielens_links"], ["silver", "imdb_titles"],
                           ["silver", "imdb_ratings"], CSV_DROP_SILVER],
                     description="TMDB answers for titles not yet enriched (CSV drops, MovieLens "
                     "links, top IMDB titles), plus genre lists and Action/Adventure discover "
                     "pages, landed as JSON files of at most 100 records and 10 MB, one "
                     "structure per file: raw/tmdb/answers/<endpoint>/YYYY/MM/DD/."),
        delta_table_spec(TMDB_REQUEST_LOG, GROUP, deps=[TMDB_RAW],
                         description="One row per landed TMDB record: endpoint, key, status, the "
                         "ids a /find or /discover answer points to, and its raw file. Written as "
                         "each file lands: what TMDB already answered, so a run resumes there."),
    ],
)
def tmdb_raw(context: dg.AssetExecutionContext, config: TmdbRunConfig, lake: LakeResource,
             tmdb: TmdbResource) -> Any:
    """Ask TMDB for the titles not yet enriched (a per-run budget, or the whole backlog in
    chunks), behind a shared rate limit; not-found ids are asked again after some days."""
    the_lake = lake.lake()
    csv_specs = context.instance.get_dynamic_partitions(csv_drop_partitions.name)
    budget = None if config.backlog else (config.max_titles or tmdb.max_titles_per_run)
    outcome = enrich(tmdb.api(), the_lake, _today(), csv_specs=csv_specs, max_titles=budget,
                     chunk_titles=tmdb.chunk_titles, discover_pages=tmdb.discover_pages,
                     workers=tmdb.workers, retry_not_found_days=tmdb.retry_not_found_days,
                     log=context.log.info)
    yield dg.MaterializeResult(asset_key=TMDB_RAW, metadata={
        "requests": outcome.requests, "titles_asked": outcome.titles,
        "titles_left": outcome.titles_left, "retried_not_found": outcome.retried_not_found,
        "chunks": outcome.chunks, "backlog": config.backlog,
        "files": len(outcome.files), "sample": tmdb.is_sample,
        **{f"records/{spec}": n for spec, n in sorted(outcome.records_by_spec.items())},
    })
    uri = the_lake.table_uri("bronze", REQUEST_LOG)
    yield dg.MaterializeResult(asset_key=TMDB_REQUEST_LOG, metadata=_table_facts(
        the_lake, uri, relogged_files=outcome.relogged_files) if open_table(the_lake, uri)
        else {"rows": 0})


@dg.multi_asset(
    name="tmdb_silver",
    specs=[delta_table_spec(["silver", t], GROUP,
                            deps=[TMDB_REQUEST_LOG], tags={"movies/source": "tmdb"},
                            description=SILVER_TABLES[t].description)
           for t in TMDB_SILVER],
)
def tmdb_silver(context: dg.AssetExecutionContext, lake: LakeResource) -> Any:
    """The TMDB answers landed since the last run merged into movies, series, credits and the
    request log (newest answer per key wins); silver/tmdb_loaded_files lists what is merged."""
    the_lake = lake.lake()
    changed = build_tmdb_silver(the_lake, context.log.info)
    for table in TMDB_SILVER:
        yield dg.MaterializeResult(asset_key=dg.AssetKey(["silver", table]), metadata=_table_facts(
            the_lake, the_lake.table_uri("silver", table), changed=changed[table]))


movies_quarantine = delta_table_spec(
    QUARANTINE_KEY,
    GROUP,
    deps=[*(imdb_raw_key(t) for t in IMDB_TABLES), MOVIELENS_RAW, CSV_DROP_RAW, TMDB_RAW],
    description="Rows of the movie sources that failed parsing or validation, with the reason, "
                "the original line and its source file. Written by the silver loads (each "
                "reports quarantined_rows in its metadata); query it as quarantine.movies_quarantine.",
)
