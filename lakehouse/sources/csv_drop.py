"""The CSV drop folder (``LAKEHOUSE_DROP_DIR``, default ``./data/drop``): what is there, and a
sample drop of seeds/004's ``movies.csv`` and ``series.csv``."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from pydantic import Field

from lakehouse.sources.movies_sample import drop_csvs
from lakehouse.transforms.csv_drop import spec_of

DEFAULT_DROP_DIR = "data/drop"
SUFFIXES = (".csv", ".tsv", ".txt", ".psv")


@dataclass(frozen=True)
class DropFile:
    path: Path
    size: int
    mtime_ns: int

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def spec(self) -> str:
        return spec_of(self.path.name)

    @property
    def fingerprint(self) -> str:
        """Cheap identity of this state of the file (the sensor cannot hash big files)."""
        return f"{self.size}-{self.mtime_ns}"


def list_drop_files(folder: Path) -> list[DropFile]:
    """Files ready in the drop folder; hidden and partial (``.part``, ``.tmp``) files wait."""
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in SUFFIXES:
            stat = path.stat()
            found.append(DropFile(path, stat.st_size, stat.st_mtime_ns))
    return found


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as src:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_sample_drop(folder: Path) -> list[Path]:
    """Put the sample ``movies.csv`` and ``series.csv`` in ``folder`` (unchanged if present)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in drop_csvs().items():
        path = folder / name
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
        written.append(path)
    return written


class CsvDropResource(dg.ConfigurableResource):
    """Where CSV files are dropped to be landed and loaded."""

    drop_dir: str | None = Field(default=None, description="Default: $LAKEHOUSE_DROP_DIR or "
                                 "./data/drop.")

    def folder(self) -> Path:
        return Path(self.drop_dir or os.environ.get("LAKEHOUSE_DROP_DIR")
                    or DEFAULT_DROP_DIR).expanduser().resolve()

    def files(self) -> list[DropFile]:
        return list_drop_files(self.folder())

    def find(self, spec: str) -> DropFile | None:
        return next((f for f in self.files() if f.spec == spec), None)
