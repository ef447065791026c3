"""TMDB: the real client against a local server answering in TMDB's format (429 with
Retry-After, 404 for an unknown id), the fan-out, the raw-file rules, and silver."""

import json
import threading

import dagster as dg
import polars as pl
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from lakehouse.defs.movies.assets import tmdb_raw, tmdb_silver
from lakehouse.lake.delta import scan
from lakehouse.lake.location import Lake
from lakehouse.lake.resource import LakeResource
from lakehouse.load.tmdb import build_tmdb_silver, enrich
from lakehouse.sources.movies_sample import TITLES, SampleTmdbApi
from lakehouse.sources.tmdb import (
    MAX_BYTES_PER_FILE,
    TmdbClient,
    TmdbResource,
    fetch_all,
    group_records,
    movie_request,
)

V3_KEY = "0123456789abcdef0123456789abcdef"
V4_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOiJ0ZXN0In0.c2lnbmF0dXJl"


class TmdbServer:
    """The sample catalogue behind HTTP; every third request first gets a 429."""

    def __init__(self, server: HTTPServer, credential: str = V3_KEY, throttle_every: int = 3):
        self.api = SampleTmdbApi()
        self.calls: list[dict] = []
        self.throttled = 0
        self._lock = threading.Lock()
        self._every = throttle_every
        self._credential = credential
        server.expect_request(__import__("re").compile(r"^/3/.*")).respond_with_handler(self)

    def __call__(self, request: Request) -> Response:
        with self._lock:
            self.calls.append({"path": request.path, "args": dict(request.args),
                               "auth": request.headers.get("Authorization")})
            n = len(self.calls)
        authorised = (request.args.get("api_key") == self._credential
                      or request.headers.get("Authorization") == f"Bearer {self._credential}")
        if not authorised:
            return Response('{"status_code":7,"status_message":"Invalid API key"}', 401)
        if self._every and n % self._every == 0:
            self.throttled += 1
            return Response('{"status_code":25,"status_message":"limit exceeded"}', 429,
                            headers={"Retry-After": "0"}, content_type="application/json")
        args = {k: v for k, v in request.args.items() if k != "api_key"}
        status, body = self.api.get(request.path, args)
        return Response(body, status, content_type="application/json;charset=utf-8")


def test_client_honours_429_and_records_404(httpserver: HTTPServer) -> None:
    server = TmdbServer(httpserver)
    client = TmdbClient(V3_KEY, httpserver.url_for("/3"))
    requests = [movie_request(603), movie_request(999_999_999), movie_request(11)]
    records = fetch_all(client, requests, workers=3)
    assert [r.status for r in records] == [200, 404, 200]
    assert records[0].json()["imdb_id"] == "tt0133093"
    assert records[1].spec == "not_found" and records[0].spec == "movie"
    # The throttled call was retried after Retry-After and answered.
    assert server.throttled >= 1 and len(server.calls) == 3 + server.throttled
    assert all(c["args"].get("append_to_response") == "credits,keywords" for c in server.calls)


def test_v4_token_goes_in_the_header_never_the_url(httpserver: HTTPServer) -> None:
    server = TmdbServer(httpserver, credential=V4_TOKEN, throttle_every=0)
    status, _ = TmdbClient(V4_TOKEN, httpserver.url_for("/3")).get("/genre/movie/list")
    assert status == 200
    assert server.calls[0]["auth"] == f"Bearer {V4_TOKEN}" and "api_key" not in server.calls[0]["args"]


def test_raw_files_hold_at_most_100_records_and_10_mb() -> None:
    small = [json.dumps({"id": i}).encode() for i in range(250)]
    files = group_records(small)
    assert [len(json.loads(f)) for f in files] == [100, 100, 50]
    big = [b'{"pad":"' + b"x" * (3 * 1024 * 1024) + b'"}' for _ in range(7)]
    files = group_records(big)
    assert all(len(f) <= MAX_BYTES_PER_FILE for f in files)
    assert [len(json.loads(f)) for f in files] == [3, 3, 1]


def test_enrichment_over_http_lands_one_structure_per_file_and_joins(
        httpserver: HTTPServer, lake: Lake) -> None:
    from lakehouse_tests.movies.test_snapshots import SNAPSHOT_ASSETS, resources

    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize(SNAPSHOT_ASSETS, instance=instance, resources=resources()).success
    server = TmdbServer(httpserver)
    res = {"lake": LakeResource(), "tmdb": TmdbResource(api_key=V3_KEY, workers=4,
                                                        api_base_url=httpserver.url_for("/3"))}
    assert dg.materialize([tmdb_raw, tmdb_silver], instance=instance, resources=res).success
    keys = lake.list_keys("raw/tmdb/answers")
    for key in keys:
        records = json.loads(lake.read_bytes(key))
        spec = key.split("/")[3]
        assert 1 <= len(records) <= 100
        # One structure per file: every record of a file is an answer of the same endpoint.
        assert {r["request"]["endpoint"] for r in records} <= ({spec} if spec != "not_found"
                                                               else {"movie", "tv", "find"})
        assert {r["status"] for r in records} == ({404} if spec == "not_found" else {200})
    assert {k.split("/")[3] for k in keys} == {"genre", "discover", "find", "movie", "tv",
                                               "not_found"}
    assert V3_KEY not in "".join(lake.read_bytes(k).decode() for k in keys)
    movies = scan(lake, lake.table_uri("silver", "tmdb_movies")).collect()
    titles = scan(lake, lake.table_uri("silver", "imdb_titles")).collect()
    expected = {t.tconst for t in TITLES if t.tmdb_id and t.title_type == "movie"} - {"tt0118694"}
    assert set(movies["imdb_id"].to_list()) == expected
    assert movies.join(titles, left_on="imdb_id", right_on="tconst", how="anti").height == 0
    matrix = movies.filter(pl.col("tmdb_id") == 603).row(0, named=True)
    assert (matrix["budget"], matrix["genres"]) == (63_000_000, ["Action", "Science Fiction"])
    assert abs(matrix["roi"] - (463_517_383 - 63_000_000) / 63_000_000) < 1e-9
    tv = scan(lake, lake.table_uri("silver", "tmdb_tv")).collect()
    assert sorted(tv["imdb_id"].to_list()) == ["tt0903747", "tt0944947"]
    requests = scan(lake, lake.table_uri("silver", "tmdb_requests")).collect()
    assert requests.filter(pl.col("status") == 404)["key"].to_list() == ["100402"]
    # The next day: everything is enriched, so only genres and discover pages are asked again.
    server.calls.clear()
    outcome = enrich(SampleTmdbApi(), lake, __import__("datetime").date(2026, 11, 24))
    assert outcome.titles == 0 and set(outcome.records_by_spec) == {"genre", "discover"}
    # Only the new genre and discover answers are merged; then nothing is new.
    changed = build_tmdb_silver(lake)
    assert changed["tmdb_requests"] is True and changed["tmdb_movies"] is False
    assert set(build_tmdb_silver(lake).values()) == {False}
