"""TMDB at the real scale, against a local server answering in TMDB's response shapes: the
shared rate limit, a 429's Retry-After pausing the whole pool, a backlog run that resumes where
an interrupted one stopped, not-found ids asked again only after the configured days, and the
incremental silver merge equal to a rebuild from every file."""

import json
import re
import threading
import time
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from lakehouse.lake.delta import overwrite_table, scan
from lakehouse.lake.location import Lake, raw_key
from lakehouse.load.tmdb import (
    REQUEST_LOG,
    build_tmdb_silver,
    enrich,
    full_tmdb_silver,
    land_records,
)
from lakehouse.sources.http import ApiError
from lakehouse.sources.tmdb import (
    TmdbClient,
    TmdbRecord,
    fetch_all,
    group_records,
    movie_request,
)

KEY = "0123456789abcdef0123456789abcdef"
NOT_FOUND = (b'{"success":false,"status_code":34,'
             b'"status_message":"The resource you requested could not be found."}')
T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)


def movie_body(tmdb_id: int, imdb_id: str, title: str) -> dict:
    """A /movie/{id}?append_to_response=credits,keywords answer, trimmed to a few of each."""
    return {
        "adult": False, "backdrop_path": None, "belongs_to_collection": None, "budget": 1_000_000,
        "genres": [{"id": 28, "name": "Action"}], "homepage": "", "id": tmdb_id,
        "imdb_id": imdb_id, "origin_country": ["US"], "original_language": "en",
        "original_title": title, "overview": "A \"quoted\" overview.", "popularity": 12.5,
        "poster_path": None, "production_companies": [], "release_date": "1999-03-30",
        "revenue": 3_000_000, "runtime": 120, "spoken_languages": [], "status": "Released",
        "tagline": "", "title": title, "video": False, "vote_average": 7.1, "vote_count": 321,
        "credits": {
            "cast": [{"adult": False, "gender": 2, "id": 9000 + tmdb_id,
                      "known_for_department": "Acting", "name": f"Actor {tmdb_id}",
                      "original_name": f"Actor {tmdb_id}", "popularity": 3.2,
                      "profile_path": None, "cast_id": 1, "character": "Lead",
                      "credit_id": f"c{tmdb_id}a", "order": 0}],
            "crew": [{"adult": False, "gender": 1, "id": 8000 + tmdb_id,
                      "known_for_department": "Directing", "name": f"Director {tmdb_id}",
                      "original_name": f"Director {tmdb_id}", "popularity": 1.1,
                      "profile_path": None, "credit_id": f"c{tmdb_id}d",
                      "department": "Directing", "job": "Director"}]},
        "keywords": {"keywords": [{"id": 1, "name": "hero"}]},
    }


def find_body(tmdb_id: int | None) -> dict:
    movies = [] if tmdb_id is None else [{
        "adult": False, "backdrop_path": None, "id": tmdb_id, "title": f"Found {tmdb_id}",
        "original_title": f"Found {tmdb_id}", "overview": "", "poster_path": None,
        "media_type": "movie", "original_language": "en", "genre_ids": [28],
        "popularity": 2.0, "release_date": "2001-01-01", "video": False,
        "vote_average": 6.0, "vote_count": 10}]
    return {"movie_results": movies, "person_results": [], "tv_results": [],
            "tv_episode_results": [], "tv_season_results": []}


class FakeTmdb:
    """TMDB v3 behind pytest-httpserver: a catalogue of titles, 404 for unknown ids, empty
    /find for unknown IMDB ids; it records when each request arrived, and can refuse (503) from
    a given request on, like an outage that ends a run."""

    def __init__(self, server: HTTPServer, movies: dict[int, str], finds: dict[str, int]):
        self.movies = dict(movies)  # tmdb id -> imdb id
        self.finds = dict(finds)  # imdb id -> tmdb id
        self.calls: list[tuple[float, str]] = []
        self.fail_from: int | None = None
        self.throttle_at: int | None = None
        self._lock = threading.Lock()
        server.expect_request(re.compile(r"^/3/.*")).respond_with_handler(self)

    def asked(self, since: int = 0) -> list[str]:
        return [path for _, path in self.calls[since:]]

    def __call__(self, request: Request) -> Response:
        with self._lock:
            self.calls.append((time.monotonic(), request.path))
            n = len(self.calls)
        if request.args.get("api_key") != KEY:
            return Response('{"status_code":7,"status_message":"Invalid API key: You must be '
                            'granted a valid key.","success":false}', 401)
        if self.fail_from is not None and n >= self.fail_from:
            return Response("<html>503 Service Temporarily Unavailable</html>", 503)
        if self.throttle_at == n:
            return Response('{"success":false,"status_code":25,"status_message":"Your request '
                            'count (51) is over the allowed limit of 50."}', 429,
                            headers={"Retry-After": "1"}, content_type="application/json")
        parts = request.path.split("/")[2:]
        body: dict | None = None
        if parts[0] == "genre":
            body = {"genres": [{"id": 28, "name": "Action"}, {"id": 12, "name": "Adventure"}]}
        elif parts[0] == "discover":
            body = {"page": int(request.args.get("page", 1)), "results": [], "total_pages": 1,
                    "total_results": 0}
        elif parts[0] == "find":
            body = find_body(self.finds.get(parts[1]))
        elif parts[0] == "movie" and int(parts[1]) in self.movies:
            tmdb_id = int(parts[1])
            body = movie_body(tmdb_id, self.movies[tmdb_id], f"Title {tmdb_id}")
        if body is None:
            return Response(NOT_FOUND, 404, content_type="application/json;charset=utf-8")
        return Response(json.dumps(body), 200, content_type="application/json;charset=utf-8")


def client(server: HTTPServer, per_second: float = 200.0) -> TmdbClient:
    return TmdbClient(KEY, server.url_for("/3"), per_second=per_second, retries=0)


def write_links(lake: Lake, links: list[tuple[str, int | None]]) -> None:
    frame = pl.DataFrame({"movie_id": list(range(1, len(links) + 1)),
                          "imdb_id": [i for i, _ in links], "tmdb_id": [t for _, t in links]},
                         schema={"movie_id": pl.Int64, "imdb_id": pl.String, "tmdb_id": pl.Int64})
    overwrite_table(lake, lake.table_uri("silver", "movielens_links"), frame)


FakeArgs = tuple[dict[int, str], dict[str, int]]


def catalogue(n: int, unknown_every: int = 0) -> tuple[list[tuple[str, int | None]], FakeArgs]:
    """``n`` MovieLens links: even ones carry a TMDB id, odd ones need a /find."""
    links: list[tuple[str, int | None]] = []
    movies: dict[int, str] = {}
    finds: dict[str, int] = {}
    for i in range(n):
        imdb_id, tmdb_id = f"tt{1_000_000 + i:07d}", 5_000 + i
        unknown = bool(unknown_every) and i % unknown_every == unknown_every - 1
        links.append((imdb_id, tmdb_id if i % 2 == 0 else None))
        if not unknown:
            movies[tmdb_id] = imdb_id
            finds[imdb_id] = tmdb_id
    return links, (movies, finds)



def landed_requests(lake: Lake) -> set[tuple[str, str]]:
    rows = scan(lake, lake.table_uri("bronze", REQUEST_LOG)).select("endpoint", "key").collect()
    return set(rows.iter_rows())


def path_of(endpoint: str, key: str) -> str:
    return f"/3/{endpoint}/{key}"


# -- the rate limit -----------------------------------------------------------------------------

def test_the_shared_limiter_keeps_every_second_under_the_limit(httpserver: HTTPServer) -> None:
    fake = FakeTmdb(httpserver, {5000 + i: f"tt{i:07d}" for i in range(50)}, {})
    started = time.monotonic()
    records = fetch_all(client(httpserver, per_second=20), [movie_request(5000 + i)
                                                             for i in range(50)], workers=8)
    assert [r.status for r in records] == [200] * 50
    arrivals = sorted(t - started for t, _ in fake.calls)
    # 8 threads share one bucket: the k-th request cannot leave before k/20 s (a busy machine
    # only delays requests, it never brings one forward); unlimited, all 50 arrive at once.
    early = [(k, round(t, 3)) for k, t in enumerate(arrivals) if t < (k - 1) / 20 - 0.005]
    assert not early, f"requests sent ahead of the 20/s limit: {early}"
    assert arrivals[-1] >= 48 / 20


def test_a_429_retry_after_pauses_the_whole_pool(httpserver: HTTPServer) -> None:
    fake = FakeTmdb(httpserver, {5000 + i: f"tt{i:07d}" for i in range(16)}, {})
    fake.throttle_at = 5
    records = fetch_all(client(httpserver, per_second=40), [movie_request(5000 + i)
                                                             for i in range(16)], workers=4)
    assert [r.status for r in records] == [200] * 16 and len(fake.calls) == 17
    throttled_at, throttled_path = fake.calls[4]
    later = [(t - throttled_at, path) for t, path in fake.calls[5:]]
    # At most the 3 other workers' requests already past the limiter arrive during the pause;
    # every other one, the retry included, waits out Retry-After: 1 (without the shared pause,
    # the other workers go on at 40/s and send all 11 within that second).
    assert sum(d < 0.95 for d, _ in later) <= 3
    assert [d for d, path in later if path == throttled_path][0] >= 0.95


# -- backlog, resume, not found -----------------------------------------------------------------

def test_an_interrupted_backlog_run_resumes_without_asking_again_what_landed(
        httpserver: HTTPServer, lake: Lake) -> None:
    links, (movies, finds) = catalogue(40)
    write_links(lake, links)
    fake = FakeTmdb(httpserver, movies, finds)
    fake.fail_from = 30  # an outage in the middle of the third chunk
    with pytest.raises(ApiError, match="HTTP 503"):
        enrich(client(httpserver), lake, max_titles=None, chunk_titles=8, workers=4,
               now=lambda: T0)
    landed = landed_requests(lake)
    titles_landed = {k for e, k in landed if e in ("movie", "find")}
    assert 8 <= len(titles_landed) < 40

    fake.fail_from, before = None, len(fake.calls)
    outcome = enrich(client(httpserver), lake, max_titles=None, chunk_titles=8, workers=4,
                     now=lambda: T0 + timedelta(hours=1))
    again = set(fake.asked(before))
    assert not again & {path_of(e, k) for e, k in landed if e in ("movie", "find")}
    # Every title is answered at the end: the 20 movies by id, 20 /find then their /movie.
    assert outcome.titles_left == 0
    final = landed_requests(lake)
    assert {k for e, k in final if e == "find"} == {i for i, t in links if t is None}
    assert {int(k) for e, k in final if e == "movie"} == set(movies)
    build_tmdb_silver(lake)
    silver = scan(lake, lake.table_uri("silver", "tmdb_movies")).collect()
    assert silver.height == 40 and set(silver["imdb_id"]) == {i for i, _ in links}


def test_not_found_ids_are_asked_again_only_after_the_configured_days(
        httpserver: HTTPServer, lake: Lake) -> None:
    links, (movies, finds) = catalogue(10, unknown_every=5)  # titles 4 (by id), 9 (by /find)
    write_links(lake, links)
    fake = FakeTmdb(httpserver, movies, finds)
    unknown = {path_of("movie", "5004"), path_of("find", "tt1000009")}

    first = enrich(client(httpserver), lake, max_titles=None, retry_not_found_days=30,
                   now=lambda: T0)
    assert first.records_by_spec["not_found"] == 1 and unknown <= set(fake.asked())
    for days, asked_again in ((10, False), (29, False), (30, True)):
        before = len(fake.calls)
        outcome = enrich(client(httpserver), lake, max_titles=None, retry_not_found_days=30,
                         now=lambda d=days: T0 + timedelta(days=d))
        now_asked = set(fake.asked(before)) - {"/3/genre/movie/list", "/3/genre/tv/list",
                                               "/3/discover/movie"}
        assert (now_asked == unknown) is asked_again and (now_asked == set()) is not asked_again
        assert outcome.retried_not_found == (2 if asked_again else 0)
    # TMDB has learnt both titles since: the retry after 30 more days finds them.
    fake.movies[5004], fake.movies[5009], fake.finds["tt1000009"] = "tt1000004", "tt1000009", 5009
    enrich(client(httpserver), lake, max_titles=None, now=lambda: T0 + timedelta(days=61))
    build_tmdb_silver(lake)
    silver = scan(lake, lake.table_uri("silver", "tmdb_movies")).collect()
    assert {"tt1000004", "tt1000009"} <= set(silver["imdb_id"])
    requests = scan(lake, lake.table_uri("silver", "tmdb_requests")).collect()
    assert requests.filter(pl.col("status") == 404).is_empty()


# -- incremental silver -------------------------------------------------------------------------

SILVER_KEYS = {"tmdb_movies": ["tmdb_id"], "tmdb_tv": ["tmdb_id"],
               "tmdb_credits": ["media_type", "tmdb_id", "credit_id"],
               "tmdb_requests": ["endpoint", "key"]}


def refetched(tmdb_id: int, title: str, at: datetime, cast: str) -> TmdbRecord:
    body = movie_body(tmdb_id, f"tt{1_000_000 + tmdb_id - 5000:07d}", title)
    body["credits"]["cast"][0]["credit_id"] = cast
    return TmdbRecord(movie_request(tmdb_id), 200, json.dumps(body).encode(),
                      at.isoformat(timespec="seconds"))


def test_incremental_silver_after_many_landings_equals_a_full_rebuild(
        httpserver: HTTPServer, lake: Lake) -> None:
    links, (movies, finds) = catalogue(24, unknown_every=6)
    write_links(lake, links)
    FakeTmdb(httpserver, movies, finds)
    lines: list[str] = []
    for run in range(4):  # four daily runs of 6 titles, silver merged after each
        enrich(client(httpserver), lake, max_titles=6, now=lambda r=run: T0 + timedelta(days=r))
        build_tmdb_silver(lake, lines.append)
    # A newer answer for 5000 (new title, new cast) and an older one for 5002 landing late.
    land_records(lake, [refetched(5000, "Renamed", T0 + timedelta(days=5), "new-cast")],
                 (T0 + timedelta(days=5)).date())
    land_records(lake, [refetched(5002, "Stale", T0 - timedelta(days=9), "old-cast")],
                 (T0 + timedelta(days=5)).date())
    changed = build_tmdb_silver(lake, lines.append)
    assert changed["tmdb_movies"] and lines[-1].startswith("TMDB silver: merging 2 new raw")
    assert not any(v for v in build_tmdb_silver(lake, lines.append).values())

    full = {t: f.collect() for t, f in full_tmdb_silver(lake).items()}
    for table, keys in SILVER_KEYS.items():
        merged = scan(lake, lake.table_uri("silver", table)).collect()
        assert merged.sort(keys).equals(full[table].select(merged.columns).sort(keys)), table
    movies_now = scan(lake, lake.table_uri("silver", "tmdb_movies")).collect()
    assert dict(movies_now.filter(pl.col("tmdb_id").is_in([5000, 5002]))
                .select("tmdb_id", "title").rows()) == {5000: "Renamed", 5002: "Title 5002"}
    credits = scan(lake, lake.table_uri("silver", "tmdb_credits")).collect()
    assert set(credits.filter(pl.col("tmdb_id") == 5000)["credit_id"]) == {"new-cast", "c5000d"}
    assert "old-cast" not in set(credits["credit_id"])


def test_files_landed_but_never_logged_count_as_answered(httpserver: HTTPServer,
                                                         lake: Lake) -> None:
    # A run killed between landing a file and logging it (or a lake from before the log): the
    # raw file is all there is.
    links, (movies, finds) = catalogue(6)
    write_links(lake, links)
    fake = FakeTmdb(httpserver, movies, finds)
    landed = [refetched(5000, "Title 5000", T0, "c5000a"), refetched(5002, "Title 5002", T0,
                                                                      "c5002a")]
    [data] = group_records([r.envelope() for r in landed])
    lake.write_bytes(raw_key("raw/tmdb/answers/movie", T0.date(), "movie-0123456789abcdef.json"),
                     data)
    outcome = enrich(client(httpserver), lake, max_titles=None, now=lambda: T0)
    assert outcome.relogged_files == 1
    assert not {"/3/movie/5000", "/3/movie/5002"} & set(fake.asked())
    assert "/3/movie/5004" in fake.asked()
    build_tmdb_silver(lake)
    assert scan(lake, lake.table_uri("silver", "tmdb_movies")).collect().height == 6
