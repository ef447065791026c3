"""CSV files dropped in the drop folder to one silver table each: dialect detection and cleaning.

A drop is any CSV-like file: comma, semicolon, tab or pipe separated (the movies-and-series
challenge's movies.csv uses ``|``), with or without a header. ``detect_dialect`` decides from
the first characters; ``csv_drop_table`` names, trims and deduplicates; ``rejected_records``
puts the records the reader set aside in the quarantine's shape. Pure functions: the caller
reads the file (``lakehouse.sources.csv_drop``: encoding, ragged records).
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass

import polars as pl

from lakehouse.transforms.imdb import QUARANTINE_SCHEMA

DELIMITERS = ",;\t|"
CSV_NULL_VALUES = ["\\N", "", "NA", "N/A", "null", "NULL"]
_NUMBER = re.compile(r"^-?\d+([.,]\d+)?$")


@dataclass(frozen=True)
class CsvDialect:
    delimiter: str
    has_header: bool
    quote_char: str | None = '"'


def _looks_numeric(value: str) -> bool:
    return bool(_NUMBER.match(value.strip())) or value.strip() in ("\\N", "")


def detect_dialect(sample: str | bytes) -> CsvDialect:
    """The delimiter and header of a CSV from its first characters (bytes are read as UTF-8).

    The delimiter is the candidate that splits every sampled line into the same number (>1) of
    fields; the header is present when the first line has no numbers where later lines have
    them, or when its fields are distinct names while data rows repeat values.
    """
    text = sample.decode("utf-8", errors="replace") if isinstance(sample, bytes) else sample
    text = text.lstrip("\ufeff")
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    if len(lines) > 1 and not text.endswith("\n"):
        lines = lines[:-1]  # the sample may end mid-line
    if not lines:
        return CsvDialect(",", True)
    best, best_fields = ",", 1
    for candidate in DELIMITERS:
        counts = {len(next(csv.reader([line], delimiter=candidate))) for line in lines}
        if len(counts) == 1 and (n := counts.pop()) > best_fields:
            best, best_fields = candidate, n
    if best_fields == 1:
        try:
            best = csv.Sniffer().sniff("\n".join(lines), delimiters=DELIMITERS).delimiter
        except csv.Error:
            best = ","
    rows = list(csv.reader(lines, delimiter=best))
    first, rest = rows[0], rows[1:]
    if not rest:
        return CsvDialect(best, not any(_looks_numeric(v) for v in first))
    numeric_cols = [i for i in range(len(first))
                    if all(i < len(r) and _looks_numeric(r[i]) for r in rest)
                    and any(i < len(r) and r[i].strip() not in ("\\N", "") for r in rest)]
    if numeric_cols:
        has_header = not any(_NUMBER.match(first[i].strip()) for i in numeric_cols)
    else:
        has_header = len(set(first)) == len(first) and all(
            re.match(r"^[A-Za-z_][\w .-]*$", v.strip()) for v in first)
    return CsvDialect(best, has_header)


def snake_case(name: str) -> str:
    """``tituloPincipal`` -> ``titulo_pincipal``; ``Release Year`` -> ``release_year``;
    ``Título`` -> ``titulo`` (accents dropped, as a Latin-1 export's headers have them)."""
    name = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.strip())
    name = re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_").lower()
    return name or "column"


def column_names(names: list[str]) -> list[str]:
    """Snake-case names, made unique (``name``, ``name_2``)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        base = snake_case(name)
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
    return out


def spec_of(filename: str) -> str:
    """The landing spec and table suffix of a dropped file: ``Movies 2024.csv`` -> ``movies_2024``."""
    stem = filename.rsplit(".", 1)[0] if "." in filename else filename
    return snake_case(stem)


def csv_drop_table(raw: pl.LazyFrame) -> pl.LazyFrame:
    """A dropped CSV -> ``csv_<spec>``: snake-case columns, text trimmed (empty is null),
    exact duplicate rows dropped. Grain: one row per distinct line of the file."""
    schema = raw.collect_schema()
    renamed = dict(zip(schema.names(), column_names(schema.names()), strict=True))
    trimmed = [
        pl.col(c).str.strip_chars().replace("", None).alias(c) if dtype == pl.String else pl.col(c)
        for c, dtype in schema.items()
    ]
    return raw.with_columns(trimmed).rename(renamed).unique(maintain_order=True)


def rejected_records(rejected: list[tuple[int, str, str]], *, source_file: str,
                     table: str) -> pl.DataFrame:
    """Records set aside by the reader -> quarantine rows: ``record_index`` is the line number
    (1 = the first line of the file) where the record starts, ``raw_record`` its text."""
    return pl.DataFrame(
        {"_source_file": [source_file] * len(rejected),
         "record_index": [line for line, _, _ in rejected],
         "source": ["csv_drop"] * len(rejected), "table": [table] * len(rejected),
         "reason": [f"line {line}: {reason}" for line, reason, _ in rejected],
         "raw_record": [text for _, _, text in rejected]},
        schema=QUARANTINE_SCHEMA)
