"""TMDB enrichment: which titles to ask for, the two fan-out stages, landing, and silver.

Titles come from the CSV drops first (TMDB is asked by the IMDB ids
the dropped CSVs hold), then
MovieLens links (which already carry TMDB ids), then the most-voted IMDB titles.

What TMDB already answered is known from the lake, never from memory: every landed file's
records go to ``bronze/tmdb_requests`` (what was asked, the status, the ids a /find or /discover
answer points to) right after the file lands, and a run starts by adding any landed file that
is missing there (a run killed between the two). So a run resumes where the last one stopped,
and an id TMDB did not know (404, or a /find with no result) is asked again only after
``retry_not_found_days``.

Stage 1 asks the genre lists, /discover/movie page ranges of Action and Adventure, and /find for
IMDB ids without a TMDB id; stage 2 asks /movie/{id} (credits, keywords) and /tv/{id} for the
ids found. A run asks ``chunk_titles`` titles at a time and lands each chunk before the next;
the backlog mode has no per-run budget and fills every candidate title.

Silver is incremental: ``silver/tmdb_loaded_files`` lists the raw files already merged, and a
run merges only the others' records (newest answer per key wins, looked up among the rows of
the keys it touches), which gives the same tables as a rebuild from every file. No Dagster here.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import polars as pl

from lakehouse.lake.delta import (
    append_replacing_sources,
    in_predicate,
    merge_on_keys,
    open_table,
    overwrite_table,
    replace_where,
    scan,
)
from lakehouse.lake.location import Lake, raw_key, raw_prefix
from lakehouse.lake.snapshots import write_snapshot_table
from lakehouse.sources.tmdb import (
    TmdbApi,
    TmdbRecord,
    TmdbRequest,
    discover_requests,
    fetch_all,
    find_request,
    genre_requests,
    group_records,
    movie_request,
    tv_request,
)
from lakehouse.transforms.tmdb import (
    MOVIE_RESPONSE,
    REQUEST_LOG_RESPONSE,
    TMDB_CREDITS_SCHEMA,
    TMDB_MOVIES_SCHEMA,
    TMDB_REQUEST_LOG_SCHEMA,
    TMDB_REQUESTS_SCHEMA,
    TMDB_TV_SCHEMA,
    TV_RESPONSE,
    envelope_schema,
    tmdb_credits,
    tmdb_movies,
    tmdb_request_log,
    tmdb_requests,
    tmdb_tv,
)

Log = Callable[[str], None]
Clock = Callable[[], datetime]
# The raw asset's key: each endpoint's answers land in their own folder below it.
RAW_ANSWERS = ("raw", "tmdb", "answers")
RAW_PREFIX = raw_prefix(RAW_ANSWERS)
SPECS = ("genre", "discover", "find", "movie", "tv", "not_found")
TMDB_SILVER = ("tmdb_movies", "tmdb_tv", "tmdb_credits", "tmdb_requests")
REQUEST_LOG = "tmdb_requests"  # the bronze table
LOADED_FILES = "tmdb_loaded_files"  # the silver ledger
LOADED_FILES_SCHEMA = {"source_file": pl.String, "loaded_at": pl.Datetime("us", "UTC")}
IMDB_ID = r"^tt\d{7,}$"
RECONCILE_BATCH = 50


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _exists(lake: Lake, table: str, layer: str = "silver") -> bool:
    return open_table(lake, lake.table_uri(layer, table)) is not None


def csv_imdb_ids(lake: Lake, specs: Iterable[str]) -> list[str]:
    """IMDB ids in the dropped CSVs' tables: every text column whose values look like ``tt...``."""
    found: list[str] = []
    for spec in specs:
        table = f"csv_{spec}"
        if not _exists(lake, table):
            continue
        frame = scan(lake, lake.table_uri("silver", table))
        for name, dtype in frame.collect_schema().items():
            if dtype != pl.String:
                continue
            values = frame.select(pl.col(name).drop_nulls().unique(maintain_order=True)).collect()
            column = values.to_series()
            if column.len() and column.str.contains(IMDB_ID).all():
                found.extend(column.to_list())
    return list(dict.fromkeys(found))


def candidate_titles(lake: Lake, csv_specs: Iterable[str]) -> tuple[list[str], dict[str, int]]:
    """IMDB ids in priority order, and the TMDB ids MovieLens links already know."""
    ordered = csv_imdb_ids(lake, csv_specs)
    known: dict[str, int] = {}
    if _exists(lake, "movielens_links"):
        links = scan(lake, lake.table_uri("silver", "movielens_links")).collect()
        ordered += links["imdb_id"].to_list()
        known = {i: t for i, t in links.select("imdb_id", "tmdb_id").drop_nulls().iter_rows()}
    if _exists(lake, "imdb_titles") and _exists(lake, "imdb_ratings"):
        top = (scan(lake, lake.table_uri("silver", "imdb_titles"))
               .filter(pl.col("title_type").is_in(["movie", "tvSeries", "tvMiniSeries"]))
               .join(scan(lake, lake.table_uri("silver", "imdb_ratings")), on="tconst")
               .sort("num_votes", descending=True).head(5_000).select("tconst").collect())
        ordered += top["tconst"].to_list()
    return list(dict.fromkeys(ordered)), known


# -- the request log (bronze): what TMDB answered, known from the lake ------------------------

def spec_of(key: str) -> str:
    """``raw/tmdb/answers/<spec>/YYYY/MM/DD/<file>`` -> ``<spec>``."""
    return key[len(RAW_PREFIX) + 1:].split("/", 1)[0]


def request_log_rows(key: str, data: bytes) -> pl.DataFrame:
    """The bronze rows of one landed file; ``_ingested_at`` is its newest ``fetched_at``, so a
    file gives the same rows whenever it is (re)logged."""
    frame = pl.read_json(io.BytesIO(data), schema=envelope_schema(REQUEST_LOG_RESPONSE))
    frame = frame.with_row_index("_record_index").with_columns(
        pl.col("_record_index").cast(pl.Int64), pl.lit(key).alias("_source_file"),
        pl.col("fetched_at").str.to_datetime(time_zone="UTC", time_unit="us").max()
        .alias("_ingested_at"))
    return (tmdb_request_log(frame.lazy())
            .select([pl.col(c).cast(t) for c, t in TMDB_REQUEST_LOG_SCHEMA.items()]).collect())


def log_files(lake: Lake, files: list[tuple[str, bytes]]) -> pl.DataFrame:
    """Record landed files in ``bronze/tmdb_requests`` (idempotent per file)."""
    if not files:
        return pl.DataFrame(schema=TMDB_REQUEST_LOG_SCHEMA)
    rows = pl.concat([request_log_rows(key, data) for key, data in files])
    append_replacing_sources(lake, lake.table_uri("bronze", REQUEST_LOG), rows,
                             [key for key, _ in files])
    return rows


def raw_keys(lake: Lake) -> dict[str, list[str]]:
    return {spec: [k for k in lake.list_keys(f"{RAW_PREFIX}/{spec}") if k.endswith(".json")]
            for spec in SPECS}


def logged_files(lake: Lake) -> set[str]:
    if not _exists(lake, REQUEST_LOG, "bronze"):
        return set()
    uri = lake.table_uri("bronze", REQUEST_LOG)
    return set(scan(lake, uri).select("_source_file").unique().collect().to_series().to_list())


def reconcile_request_log(lake: Lake, log: Log = lambda _: None) -> int:
    """Log the landed files missing from ``bronze/tmdb_requests``: a run that died between
    landing and logging, or files landed before the log existed. Returns how many."""
    missing = sorted({k for ks in raw_keys(lake).values() for k in ks} - logged_files(lake))
    for start in range(0, len(missing), RECONCILE_BATCH):
        batch = missing[start:start + RECONCILE_BATCH]
        log_files(lake, [(key, lake.read_bytes(key)) for key in batch])
    if missing:
        log(f"TMDB request log: {len(missing)} landed files were not logged yet; logged them")
    return len(missing)


@dataclass(frozen=True)
class Answer:
    status: int
    fetched_at: datetime
    movie_ids: tuple[int, ...] = ()
    tv_ids: tuple[int, ...] = ()

    def found(self, endpoint: str) -> bool:
        """TMDB knew the id: a 200, and for /find at least one result."""
        return self.status == 200 and (endpoint != "find" or bool(self.movie_ids or self.tv_ids))


@dataclass
class RequestLog:
    """The newest answer per (endpoint, key), and when a not-found answer is due again."""

    answers: dict[tuple[str, str], Answer] = field(default_factory=dict)

    @classmethod
    def load(cls, lake: Lake) -> RequestLog:
        log = cls()
        if _exists(lake, REQUEST_LOG, "bronze"):
            rows = (scan(lake, lake.table_uri("bronze", REQUEST_LOG))
                    .select("endpoint", "key", "status", "fetched_at", "movie_ids", "tv_ids")
                    .collect())
            log.add(rows)
        return log

    def add(self, rows: pl.DataFrame) -> None:
        for endpoint, key, status, fetched_at, movies, tvs in rows.select(
                "endpoint", "key", "status", "fetched_at", "movie_ids", "tv_ids").iter_rows():
            old = self.answers.get((endpoint, key))
            if old is None or fetched_at >= old.fetched_at:
                self.answers[(endpoint, key)] = Answer(status, fetched_at, tuple(movies or ()),
                                                       tuple(tvs or ()))

    def due(self, endpoint: str, key: str, now: datetime, retry_after: timedelta) -> bool:
        """Never asked, or not found and asked longer than ``retry_after`` ago."""
        answer = self.answers.get((endpoint, key))
        if answer is None:
            return True
        return not answer.found(endpoint) and now - answer.fetched_at >= retry_after

    def details_pointed_to(self, keys: Iterable[tuple[str, str]] | None = None
                           ) -> Iterator[tuple[str, int]]:
        """(movie|tv, TMDB id) that /find (first result) and /discover answers point to."""
        for endpoint, key in (self.answers if keys is None else keys):
            answer = self.answers.get((endpoint, key))
            if answer is None or answer.status != 200:
                continue
            if endpoint == "find":
                if answer.movie_ids:
                    yield "movie", answer.movie_ids[0]
                if answer.tv_ids:
                    yield "tv", answer.tv_ids[0]
            elif endpoint == "discover":
                yield from (("movie", i) for i in answer.movie_ids)


# -- enrichment -------------------------------------------------------------------------------

@dataclass
class EnrichOutcome:
    requests: int = 0
    records_by_spec: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    titles: int = 0
    titles_left: int = 0
    retried_not_found: int = 0
    chunks: int = 0
    relogged_files: int = 0


def enrich(api: TmdbApi, lake: Lake, day: date | None = None, *, csv_specs: Iterable[str] = (),
           max_titles: int | None = 500, chunk_titles: int = 1000, discover_pages: int = 2,
           workers: int = 8, retry_not_found_days: float = 30, now: Clock = _utcnow,
           log: Log = lambda _: None) -> EnrichOutcome:
    """Ask TMDB for the titles not yet enriched (at most ``max_titles``; None: all of them),
    ``chunk_titles`` at a time, landing each chunk's answers before asking the next."""
    outcome = EnrichOutcome()
    outcome.relogged_files = reconcile_request_log(lake, log)
    state = RequestLog.load(lake)
    started, retry_after = now(), timedelta(days=retry_not_found_days)
    ordered, known = candidate_titles(lake, csv_specs)
    todo: list[TmdbRequest] = []
    for imdb_id in ordered:
        tmdb_id = known.get(imdb_id)
        request = movie_request(tmdb_id) if tmdb_id is not None else find_request(imdb_id)
        if state.due(request.endpoint, request.key, started, retry_after):
            todo.append(request)
            outcome.retried_not_found += (request.endpoint, request.key) in state.answers
    outcome.titles_left = len(todo)
    if max_titles is not None:
        todo = todo[:max_titles]
    log(f"TMDB: {outcome.titles_left} titles not yet enriched ({outcome.retried_not_found} "
        f"not found more than {retry_not_found_days:g} days ago); asking {len(todo)} this run")
    asked = {(r.endpoint, r.key) for r in todo}
    pending = [p for p in dict.fromkeys(state.details_pointed_to())
               if state.due(p[0], str(p[1]), started, retry_after)]
    size = max(1, chunk_titles)
    chunks = [todo[i:i + size] for i in range(0, len(todo), size)] or [[]]
    for n, chunk in enumerate(chunks):
        first = [*genre_requests(), *discover_requests(discover_pages)] if n == 0 else []
        first += [r for r in chunk if r.endpoint == "find"]
        landed = _fetch_and_land(api, lake, first, day, workers, now, state, outcome)
        found = [*pending, *state.details_pointed_to((r.endpoint, r.key) for r in landed)]
        pending = []
        details = [r for r in chunk if r.endpoint == "movie"]
        for endpoint, tmdb_id in found:
            if (endpoint, str(tmdb_id)) in asked or not state.due(endpoint, str(tmdb_id), now(),
                                                                  retry_after):
                continue
            asked.add((endpoint, str(tmdb_id)))
            details.append(movie_request(tmdb_id) if endpoint == "movie" else tv_request(tmdb_id))
        _fetch_and_land(api, lake, details, day, workers, now, state, outcome)
        outcome.titles += len(chunk)
        outcome.chunks += 1
        if len(chunks) > 1:
            log(f"TMDB: chunk {n + 1}/{len(chunks)} landed ({outcome.titles} of {len(todo)} "
                f"titles, {outcome.requests} requests)")
    outcome.titles_left -= outcome.titles
    not_found = outcome.records_by_spec.get("not_found", 0)
    if not_found:
        log(f"TMDB: {not_found} unknown ids (404) recorded in not_found files")
    return outcome


def _fetch_and_land(api: TmdbApi, lake: Lake, requests: list[TmdbRequest], day: date | None,
                    workers: int, now: Clock, state: RequestLog,
                    outcome: EnrichOutcome) -> list[TmdbRequest]:
    if not requests:
        return []
    records = fetch_all(api, requests, workers=workers, now=lambda: now())
    files = _land(lake, records, day or now().date())
    state.add(log_files(lake, files))
    outcome.requests += len(records)
    outcome.files += [key for key, _ in files]
    for record in records:
        outcome.records_by_spec[record.spec] = outcome.records_by_spec.get(record.spec, 0) + 1
    return requests


def _land(lake: Lake, records: list[TmdbRecord], day: date) -> list[tuple[str, bytes]]:
    files = []
    for spec in SPECS:
        envelopes = [r.envelope() for r in records if r.spec == spec]
        for data in group_records(envelopes):
            name = f"{spec}-{hashlib.sha256(data).hexdigest()[:16]}.json"
            key = raw_key(raw_prefix(RAW_ANSWERS, spec), day, name)
            lake.write_bytes(key, data)
            files.append((key, data))
    return files


def land_records(lake: Lake, records: list[TmdbRecord], day: date) -> list[str]:
    """One structure per file: records grouped by spec, then into files of <=100 and <=10 MB;
    the landed files are then recorded in ``bronze/tmdb_requests``."""
    files = _land(lake, records, day)
    log_files(lake, files)
    return [key for key, _ in files]


# -- silver -----------------------------------------------------------------------------------

def _read(lake: Lake, keys: Iterable[str], schema: dict[str, pl.DataType]) -> pl.LazyFrame:
    frames = [pl.read_json(io.BytesIO(lake.read_bytes(k)), schema=schema) for k in keys]
    if not frames:
        return pl.LazyFrame(schema=schema)
    return pl.concat(frames, how="vertical").lazy()


def _typed(frame: pl.LazyFrame, schema: dict[str, pl.DataType]) -> pl.LazyFrame:
    return frame.select([pl.col(c).cast(t) for c, t in schema.items()])


def _silver_frames(lake: Lake, files: set[str]) -> dict[str, pl.LazyFrame]:
    """The four silver tables from the records of ``files`` alone (newest answer per key)."""
    movie = _read(lake, sorted(f for f in files if spec_of(f) == "movie"),
                  envelope_schema(MOVIE_RESPONSE))
    tv = _read(lake, sorted(f for f in files if spec_of(f) == "tv"), envelope_schema(TV_RESPONSE))
    if _exists(lake, REQUEST_LOG, "bronze") and files:
        requests = (scan(lake, lake.table_uri("bronze", REQUEST_LOG))
                    .filter(pl.col("_source_file").is_in(sorted(files))))
    else:
        requests = pl.LazyFrame(schema=TMDB_REQUEST_LOG_SCHEMA)
    return {
        "tmdb_movies": _typed(tmdb_movies(movie), TMDB_MOVIES_SCHEMA),
        "tmdb_tv": _typed(tmdb_tv(tv), TMDB_TV_SCHEMA),
        "tmdb_credits": _typed(tmdb_credits(movie, tv), TMDB_CREDITS_SCHEMA),
        "tmdb_requests": _typed(tmdb_requests(requests), TMDB_REQUESTS_SCHEMA),
    }


def full_tmdb_silver(lake: Lake) -> dict[str, pl.LazyFrame]:
    """The silver tables as a rebuild from every logged file would give them."""
    return _silver_frames(lake, logged_files(lake))


def loaded_files(lake: Lake) -> set[str] | None:
    if not _exists(lake, LOADED_FILES):
        return None
    uri = lake.table_uri("silver", LOADED_FILES)
    return set(scan(lake, uri).select("source_file").collect().to_series().to_list())


def _ledger_rows(files: Iterable[str], at: datetime) -> pl.DataFrame:
    return pl.DataFrame({"source_file": sorted(files)}, schema={"source_file": pl.String}) \
        .with_columns(pl.lit(at).cast(LOADED_FILES_SCHEMA["loaded_at"]).alias("loaded_at"))


def _merge_newest(lake: Lake, uri: str, batch: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Upsert the rows of ``batch`` newer than (or as new as) the table's rows of their keys;
    returns the rows that won. The lookup reads only the keys of the batch."""
    if batch.is_empty():
        return batch
    lookup = scan(lake, uri).filter(pl.col(keys[-1]).is_in(batch[keys[-1]].unique().to_list()))
    current = lookup.select(*keys, pl.col("fetched_at").alias("_current")).collect()
    winners = (batch.join(current, on=keys, how="left", nulls_equal=True)
               .filter(pl.col("_current").is_null() | (pl.col("fetched_at") >= pl.col("_current")))
               .drop("_current"))
    if not winners.is_empty():
        merge_on_keys(lake, uri, winners, keys)
    return winners


def _merge_credits(lake: Lake, uri: str, credits: pl.DataFrame, media_type: str,
                   winners: pl.DataFrame) -> None:
    """The credits of every title whose answer won replace that title's credits."""
    ids = winners["tmdb_id"].unique().to_list()
    if not ids:
        return
    rows = credits.filter((pl.col("media_type") == media_type) & pl.col("tmdb_id").is_in(ids))
    replace_where(lake, uri, rows, f"media_type = '{media_type}' AND {in_predicate('tmdb_id', ids)}")


def build_tmdb_silver(lake: Lake, log: Log = lambda _: None, *, full: bool = False,
                      now: Clock = _utcnow) -> dict[str, bool]:
    """Merge the records of the logged files not yet in silver into the four tables (a
    rebuild from every file when a table is missing, or ``full``); a no-op without new files."""
    uris = {t: lake.table_uri("silver", t) for t in TMDB_SILVER}
    ledger_uri = lake.table_uri("silver", LOADED_FILES)
    # Files landed but not logged (a raw run that died, a lake from before the log) count too.
    reconcile_request_log(lake, log)
    files = logged_files(lake)
    loaded = loaded_files(lake)
    rebuild = full or loaded is None or not all(_exists(lake, t) for t in TMDB_SILVER)
    if rebuild:
        tag = f"{RAW_PREFIX}@{len(files)} files"
        for table, frame in _silver_frames(lake, files).items():
            log(f"{table}: rebuilding from {len(files)} raw files")
            write_snapshot_table(lake, uris[table], frame, tag)
        overwrite_table(lake, ledger_uri, _ledger_rows(files, now()))
        return dict.fromkeys(TMDB_SILVER, True)
    new = files - (loaded or set())
    if not new:
        log("TMDB silver: no new raw files; nothing to do")
        return dict.fromkeys(TMDB_SILVER, False)
    log(f"TMDB silver: merging {len(new)} new raw files (of {len(files)})")
    frames = {t: f.collect() for t, f in _silver_frames(lake, new).items()}
    _merge_newest(lake, uris["tmdb_requests"], frames["tmdb_requests"], ["endpoint", "key"])
    movies = _merge_newest(lake, uris["tmdb_movies"], frames["tmdb_movies"], ["tmdb_id"])
    tv = _merge_newest(lake, uris["tmdb_tv"], frames["tmdb_tv"], ["tmdb_id"])
    _merge_credits(lake, uris["tmdb_credits"], frames["tmdb_credits"], "movie", movies)
    _merge_credits(lake, uris["tmdb_credits"], frames["tmdb_credits"], "tv", tv)
    # The ledger is written last: a crash before it merges the same files again (idempotent).
    append_replacing_sources(lake, ledger_uri, _ledger_rows(new, now()), sorted(new),
                             source_column="source_file")
    return {"tmdb_requests": True, "tmdb_movies": not movies.is_empty(),
            "tmdb_tv": not tv.is_empty(), "tmdb_credits": not (movies.is_empty() and tv.is_empty())}
