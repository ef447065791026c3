"""The real HTTP clients against a local server answering like datasets.imdbws.com and
files.grouplens.org: gzip TSV with \\N and stray quotes, conditional GET, the zip and its md5."""

import gzip
import hashlib
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from lakehouse.defs.movies.assets import imdb_raw, movielens_raw, movielens_silver
from lakehouse.defs.movies.assets import imdb_silver_assets as silver
from lakehouse.lake.delta import scan
from lakehouse.lake.location import Lake
from lakehouse.lake.resource import LakeResource
from lakehouse.sources.http import ApiError
from lakehouse.sources.imdb import ImdbClient, ImdbResource, Previous
from lakehouse.sources.movielens import MovieLensClient, MovieLensResource, release_url
from lakehouse.sources.movies_sample import movielens_zip

FIXTURES = Path(__file__).parents[1] / "fixtures" / "movies"
ETAG = '"5f1e-62a1b"'
MODIFIED = "Sun, 22 Nov 2026 10:00:00 GMT"


def serve_conditional(server: HTTPServer, path: str, body: bytes, calls: list[dict]) -> None:
    """Answer like a static file server: 304 when If-None-Match matches the ETag."""
    def handler(request: Request) -> Response:
        calls.append(dict(request.headers))
        if request.headers.get("If-None-Match") == ETAG:
            return Response(status=304, headers={"ETag": ETAG})
        return Response(body, status=200, headers={"ETag": ETAG, "Last-Modified": MODIFIED,
                                                   "Content-Type": "application/gzip"})
    server.expect_request(path).respond_with_handler(handler)


def test_imdb_download_is_streamed_and_conditional(httpserver: HTTPServer, tmp_path) -> None:
    body = gzip.compress((FIXTURES / "title.basics.tsv").read_bytes())
    calls: list[dict] = []
    serve_conditional(httpserver, "/title.basics.tsv.gz", body, calls)
    client = ImdbClient(httpserver.url_for("/"))
    lines: list[str] = []
    first = client.fetch("title.basics.tsv.gz", tmp_path / "a.gz", Previous(), lines.append)
    assert first.changed and first.path.read_bytes() == body
    assert (first.etag, first.last_modified) == (ETAG, MODIFIED)
    assert first.sha256 == hashlib.sha256(body).hexdigest()
    again = client.fetch("title.basics.tsv.gz", tmp_path / "b.gz",
                         Previous(first.etag, first.last_modified, first.sha256), lines.append)
    assert not again.changed and not (tmp_path / "b.gz").exists()
    assert calls[1]["If-None-Match"] == ETAG and calls[1]["If-Modified-Since"] == MODIFIED
    assert any("not modified" in line for line in lines)


def test_imdb_over_http_to_silver_keeps_quotes_and_quarantines(
        httpserver: HTTPServer, lake: Lake) -> None:
    body = gzip.compress((FIXTURES / "title.basics.tsv").read_bytes())
    calls: list[dict] = []
    serve_conditional(httpserver, "/title.basics.tsv.gz", body, calls)
    resources = {"lake": LakeResource(), "imdb": ImdbResource(base_url=httpserver.url_for("/"))}
    selection = [dg.AssetKey(["raw", "imdb", "title_basics"]), dg.AssetKey(["silver", "imdb_titles"])]
    instance = dg.DagsterInstance.ephemeral()
    for _ in range(2):
        assert dg.materialize([imdb_raw, *silver], instance=instance, resources=resources,
                              selection=selection).success
    assert len(calls) == 2 and len(lake.list_keys("raw/imdb")) == 1
    titles = scan(lake, lake.table_uri("silver", "imdb_titles")).sort("tconst").collect()
    assert titles["tconst"].to_list() == ["tt0000001", "tt0000502", "tt0133093", "tt0903747"]
    bohemios = titles.row(1, named=True)
    assert (bohemios["primary_title"], bohemios["original_title"]) == ('"Bohemios"', '"Bohemios')
    assert bohemios["genres"] == [] and bohemios["end_year"] is None
    assert titles.row(3, named=True)["genres"] == ["Crime", "Drama", "Thriller"]
    quarantine = scan(lake, lake.table_uri("quarantine", "movies_quarantine")).collect()
    assert quarantine.select("record_index", "reason").rows() == [(4, "startYear is not a year")]
    assert quarantine["raw_record"][0].startswith('tt1234567\tmovie\t12" Vinyl')


def test_movielens_zip_checked_against_published_md5(httpserver: HTTPServer, lake: Lake) -> None:
    body = movielens_zip()
    httpserver.expect_request("/ml-latest-small.zip").respond_with_data(
        body, headers={"ETag": '"ml"'}, content_type="application/zip")
    httpserver.expect_request("/ml-latest-small.zip.md5").respond_with_data(
        f"{hashlib.md5(body).hexdigest()}  ml-latest-small.zip\n")
    url = httpserver.url_for("/ml-latest-small.zip")
    resources = {"lake": LakeResource(), "movielens": MovieLensResource(url=url)}
    assert dg.materialize([movielens_raw, movielens_silver], instance=dg.DagsterInstance.ephemeral(),
                          resources=resources).success
    [landed] = lake.list_keys("raw/movielens/release/ml-latest-small")
    assert landed.endswith("/ml-latest-small.zip") and lake.read_bytes(landed) == body
    movies = scan(lake, lake.table_uri("silver", "movielens_movies")).collect()
    assert movies.height == 24


def test_movielens_zip_with_wrong_checksum_is_refused(httpserver: HTTPServer, tmp_path) -> None:
    httpserver.expect_request("/ml-25m.zip").respond_with_data(b"PK-not-really")
    httpserver.expect_request("/ml-25m.zip.md5").respond_with_data("0" * 32 + "  ml-25m.zip\n")
    client = MovieLensClient(httpserver.url_for("/ml-25m.zip"), retries=0)
    with pytest.raises(ApiError, match="does not match the published"):
        client.fetch("ml-25m.zip", tmp_path / "z.zip", Previous())


def test_movielens_release_setting() -> None:
    assert release_url(None).endswith("/ml-latest-small.zip")
    assert release_url("ml-25m") == "https://files.grouplens.org/datasets/movielens/ml-25m.zip"
    assert release_url("http://127.0.0.1:9/x/ml-32m.zip") == "http://127.0.0.1:9/x/ml-32m.zip"


def test_links_fixture_ids_join_as_imdb_tconst() -> None:
    from lakehouse.transforms.movielens import MOVIELENS_CSV_OPTIONS, movielens_links

    links = movielens_links(pl.scan_csv(FIXTURES / "links.csv", **MOVIELENS_CSV_OPTIONS)).collect()
    assert dict(links.sort("movie_id").select("imdb_id", "tmdb_id").rows()) == {
        "tt0114709": 862, "tt0062622": None, "tt0133093": 603, "tt10872600": 634649}
