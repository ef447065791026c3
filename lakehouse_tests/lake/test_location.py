"""Raw landing prefixes come from the raw assets' keys."""

from datetime import date

import pytest

from lakehouse.lake.location import raw_key, raw_prefix


def test_a_raw_asset_lands_under_its_key_path() -> None:
    assert raw_prefix(("raw", "tmdb", "answers"), "movie") == "raw/tmdb/answers/movie"
    assert raw_key(raw_prefix(("raw", "telegram", "webhook")), date(2026, 11, 2), "a.ndjson") \
        == "raw/telegram/webhook/2026/11/02/a.ndjson"


@pytest.mark.parametrize("key", [("silver", "tmdb_movies"), ("raw", "tmdb"), ("bronze", "a", "b")])
def test_a_key_that_is_not_a_raw_asset_has_no_landing_prefix(key: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="not a raw asset key"):
        raw_prefix(key)
