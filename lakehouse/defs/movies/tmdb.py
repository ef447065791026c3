"""TMDB enrichment: which titles to ask for, the two fan-out stages, landing, and silver.

Titles come from the CSV drops first (seeds/004 keys TMDB by the IMDB ids of its CSVs), then
MovieLens links (which already carry TMDB ids), then the most-voted IMDB titles. A title already
answered (found or 404) is in ``silver/tmdb_requests`` and is not asked again.

Stage 1 asks the genre lists, /discover/movie page ranges of Action and Adventure, and /find for
IMDB ids without a TMDB id; stage 2 asks /movie/{id} (credits, keywords) and /tv/{id} for the
ids found. No Dagster here.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date

import polars as pl

from lakehouse.defs.movies.snapshots import built_from, write_snapshot_table
from lakehouse.lake.delta import open_table, scan
from lakehouse.lake.location import Lake, raw_key
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
    TMDB_CREDITS_SCHEMA,
    TMDB_MOVIES_SCHEMA,
    TMDB_REQUESTS_SCHEMA,
    TMDB_TV_SCHEMA,
    TV_RESPONSE,
    envelope_schema,
    tmdb_credits,
    tmdb_movies,
    tmdb_requests,
    tmdb_tv,
)

Log = Callable[[str], None]
RAW_PREFIX = "raw/tmdb/json"
SPECS = ("genre", "discover", "find", "movie", "tv", "not_found")
TMDB_SILVER = ("tmdb_movies", "tmdb_tv", "tmdb_credits", "tmdb_requests")
IMDB_ID = r"^tt\d{7,}$"


def _exists(lake: Lake, table: str) -> bool:
    return open_table(lake, lake.table_uri("silver", table)) is not None


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


def answered(lake: Lake) -> set[tuple[str, str]]:
    if not _exists(lake, "tmdb_requests"):
        return set()
    done = scan(lake, lake.table_uri("silver", "tmdb_requests")).select("endpoint", "key")
    return set(done.collect().iter_rows())


@dataclass(frozen=True)
class EnrichOutcome:
    requests: int
    records_by_spec: dict[str, int]
    files: list[str]
    titles: int


def _first_id(record: TmdbRecord, field: str) -> int | None:
    results = record.json().get(field) or []
    return results[0].get("id") if results else None


def enrich(api: TmdbApi, lake: Lake, day: date, *, csv_specs: Iterable[str] = (),
           max_titles: int = 500, discover_pages: int = 2, workers: int = 8,
           log: Log = lambda _: None) -> EnrichOutcome:
    """Ask TMDB for titles not yet enriched and land every answer, grouped, under raw/tmdb/json."""
    done = answered(lake)
    ordered, known = candidate_titles(lake, csv_specs)
    stage1: list[TmdbRequest] = [*genre_requests(), *discover_requests(discover_pages)]
    movies: list[TmdbRequest] = []
    titles = 0
    for imdb_id in ordered:
        if titles >= max_titles:
            break
        tmdb_id = known.get(imdb_id)
        if tmdb_id is not None:
            if ("movie", str(tmdb_id)) not in done:
                movies.append(movie_request(tmdb_id))
                titles += 1
        elif ("find", imdb_id) not in done:
            stage1.append(find_request(imdb_id))
            titles += 1
    log(f"TMDB stage 1: {len(stage1)} requests ({titles} titles not yet enriched)")
    first = fetch_all(api, stage1, workers=workers)
    asked = {("movie", r.key) for r in movies} | done
    stage2 = list(movies)
    for record in first:
        if record.status != 200:
            continue
        ids: list[tuple[str, int | None]] = []
        if record.request.endpoint == "find":
            ids = [("movie", _first_id(record, "movie_results")),
                   ("tv", _first_id(record, "tv_results"))]
        elif record.request.endpoint == "discover":
            ids = [("movie", r.get("id")) for r in record.json().get("results", [])]
        for endpoint, tmdb_id in ids:
            if tmdb_id is None or (endpoint, str(tmdb_id)) in asked:
                continue
            asked.add((endpoint, str(tmdb_id)))
            stage2.append(movie_request(tmdb_id) if endpoint == "movie" else tv_request(tmdb_id))
    log(f"TMDB stage 2: {len(stage2)} detail requests")
    records = first + fetch_all(api, stage2, workers=workers)
    files = land_records(lake, records, day)
    by_spec: dict[str, int] = {}
    for record in records:
        by_spec[record.spec] = by_spec.get(record.spec, 0) + 1
    not_found = by_spec.get("not_found", 0)
    if not_found:
        log(f"TMDB: {not_found} unknown ids (404) recorded in not_found files")
    return EnrichOutcome(len(records), by_spec, files, titles)


def land_records(lake: Lake, records: list[TmdbRecord], day: date) -> list[str]:
    """One structure per file: records grouped by spec, then into files of <=100 and <=10 MB."""
    keys = []
    for spec in SPECS:
        envelopes = [r.envelope() for r in records if r.spec == spec]
        for data in group_records(envelopes):
            name = f"{spec}-{hashlib.sha256(data).hexdigest()[:16]}.json"
            key = raw_key("tmdb", "json", spec, day, name)
            lake.write_bytes(key, data)
            keys.append(key)
    return keys


def raw_keys(lake: Lake) -> dict[str, list[str]]:
    return {spec: [k for k in lake.list_keys(f"{RAW_PREFIX}/{spec}") if k.endswith(".json")]
            for spec in SPECS}


def _read(lake: Lake, keys: list[str], schema: dict[str, pl.DataType]) -> pl.LazyFrame:
    frames = [pl.read_json(io.BytesIO(lake.read_bytes(k)), schema=schema) for k in keys]
    if not frames:
        return pl.LazyFrame(schema=schema)
    return pl.concat(frames, how="vertical").lazy()


def build_tmdb_silver(lake: Lake, log: Log = lambda _: None) -> dict[str, bool]:
    """Every landed TMDB file to the four silver tables; a no-op when no file is new."""
    keys = raw_keys(lake)
    everything = sorted(k for ks in keys.values() for k in ks)
    tag = f"{RAW_PREFIX}@{hashlib.sha256(chr(10).join(everything).encode()).hexdigest()}"
    uris = {t: lake.table_uri("silver", t) for t in TMDB_SILVER}
    if all(built_from(lake, uri) == tag for uri in uris.values()):
        log("TMDB silver: no new raw files; nothing to do")
        return dict.fromkeys(TMDB_SILVER, False)
    movie = _read(lake, keys["movie"], envelope_schema(MOVIE_RESPONSE))
    tv = _read(lake, keys["tv"], envelope_schema(TV_RESPONSE))
    requests = _read(lake, everything, envelope_schema(None))
    frames = {
        "tmdb_movies": (tmdb_movies(movie), TMDB_MOVIES_SCHEMA),
        "tmdb_tv": (tmdb_tv(tv), TMDB_TV_SCHEMA),
        "tmdb_credits": (tmdb_credits(movie, tv), TMDB_CREDITS_SCHEMA),
        "tmdb_requests": (tmdb_requests(requests), TMDB_REQUESTS_SCHEMA),
    }
    for table, (frame, schema) in frames.items():
        frame = frame.select([pl.col(c).cast(t) for c, t in schema.items()])
        log(f"{table}: rebuilding from {len(everything)} raw files")
        write_snapshot_table(lake, uris[table], frame, tag)
    return dict.fromkeys(TMDB_SILVER, True)
