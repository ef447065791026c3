"""MovieLens (files.grouplens.org): the release zip, checked against its published checksum.

``MOVIELENS_URL`` is either a release name (``ml-latest-small``, the default, ``ml-25m``,
``ml-32m``) or the full URL of a zip. GroupLens publishes ``<zip>.md5`` next to each release;
when it exists the download must match it, when it is missing (404) the zip is taken as is.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import dagster as dg
from pydantic import Field

from lakehouse.sources.http import ApiError, build_session, send
from lakehouse.sources.imdb import (
    Download,
    FileSource,
    Previous,
    Progress,
    conditional_download,
    sample_fetch,
)
from lakehouse.sources.movies_sample import movielens_zip

GROUPLENS = "https://files.grouplens.org/datasets/movielens"
DEFAULT_RELEASE = "ml-latest-small"
# The raw asset's key: each release lands in its own folder below it.
RAW_RELEASE = ("raw", "movielens", "release")


def release_url(setting: str | None) -> str:
    """``ml-25m`` -> the GroupLens URL of its zip; a URL stays as it is."""
    value = (setting or DEFAULT_RELEASE).strip()
    if "://" in value:
        return value
    return f"{GROUPLENS}/{value.removesuffix('.zip')}.zip"


def release_name(url: str) -> str:
    """``.../ml-25m.zip`` -> ``ml-25m`` (the landing-zone spec and the zip's folder)."""
    return Path(url.split("?")[0]).name.removesuffix(".zip")


def _md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as src:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class MovieLensClient:
    """Downloads one release zip (conditional GET) and checks its published md5."""

    def __init__(self, url: str, *, timeout: float = 60.0, retries: int = 5,
                 partial_dir: Path | None = None, attempts: int = 3):
        self.url = url
        self._session = build_session(retries=retries, timeout=timeout)
        self._partial_dir = partial_dir
        self._attempts = attempts

    def published_md5(self) -> str | None:
        response = send(self._session, "GET", f"{self.url}.md5", what="MovieLens checksum",
                        ok_statuses=(404, 403))
        if not response.ok:
            return None
        found = re.search(r"\b[0-9a-fA-F]{32}\b", response.text)
        return found.group(0).lower() if found else None

    def fetch(self, name: str, dest: Path, previous: Previous,
              progress: Progress | None = None) -> Download:
        download = conditional_download(self._session, self.url, dest, previous,
                                        what=f"MovieLens {name}", progress=progress,
                                        partial_dir=self._partial_dir, attempts=self._attempts)
        if download.changed and download.path is not None:
            expected = self.published_md5()
            if expected:
                actual = _md5_of(download.path)
                if actual != expected:
                    raise ApiError(f"MovieLens {name}: md5 {actual} does not match the "
                                   f"published {expected}")
                if progress:
                    progress(f"MovieLens {name}: md5 matches the published checksum")
            elif progress:
                progress(f"MovieLens {name}: no published checksum, taken as downloaded")
        return download


class SampleMovieLens:
    def __init__(self, version: int = 1):
        self.version = version

    def fetch(self, name: str, dest: Path, previous: Previous,
              progress: Progress | None = None) -> Download:
        return sample_fetch(movielens_zip(self.version), dest, previous, f"MovieLens {name}",
                            progress)


# The resource's fields and the variables that set them (``lakehouse.settings.env_fields``).
MOVIELENS_ENV = {"url": "MOVIELENS_URL"}


class MovieLensResource(dg.ConfigurableResource):
    """MovieLens: the real release when ``url`` is set (or ``use_sample`` is false), else the
    sample zip in the ml-latest-small layout."""

    url: str | None = Field(default=None, description="MOVIELENS_URL (a release name like "
                            "ml-25m, or a zip URL).")
    use_sample: bool | None = Field(default=None, description="False when "
                                    "LAKEHOUSE_MOVIES_SAMPLE=0; unset: the sample unless url is "
                                    "set.")
    sample_version: int = Field(default=1, description="Release of the sample zip.")

    def _setting(self) -> str | None:
        return self.url or None

    @property
    def is_sample(self) -> bool:
        if self.use_sample is not None:
            return self.use_sample
        return not self._setting()

    def release(self) -> str:
        return DEFAULT_RELEASE if self.is_sample else release_name(release_url(self._setting()))

    def source(self) -> FileSource:
        if self.is_sample:
            return SampleMovieLens(self.sample_version)
        return MovieLensClient(release_url(self._setting()))
