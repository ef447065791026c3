"""The CSV drop folder (``LAKEHOUSE_DROP_DIR``, default ``./data/drop``): what is there, how a
dropped file is read, and a sample drop of ``movies.csv`` and ``series.csv`` (pipe-delimited).

What a drop guarantees (nothing in a dropped file is lost):

- **One file per table.** A file's table is ``csv_<spec>``, its snake-cased stem. Two files
  with the same spec (``Movies.csv`` and ``movies.csv``, ``movies.tsv``) are never loaded over
  each other: the load fails naming every file, and nothing of either is landed until all but
  one are renamed. A clear failure rather than made-up table names, because a name derived
  from whichever file came first would change with the order of arrival, and analysts query
  the table by the name of their file. A clashing file's fingerprint names its rivals, so the
  sensor asks again for each once the clash is resolved.
- **Every record loads or is quarantined.** A record with more or fewer fields than the header
  goes to ``quarantine/movies_quarantine`` with its line number, the reason and its text as
  written; the other records load.
- **Any encoding.** The encoding is declared (``CsvDropResource.encoding`` or
  ``$LAKEHOUSE_DROP_ENCODING``) or detected (``detect_encoding``), and recorded with the table.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from pydantic import Field

from lakehouse.sources.movies_sample import drop_csvs
from lakehouse.transforms.csv_drop import CsvDialect, detect_dialect, spec_of

DEFAULT_DROP_DIR = "data/drop"
# The raw asset's key: each dropped file (its spec) lands in its own folder below it.
RAW_FILE = ("raw", "csv_drop", "file")
SUFFIXES = (".csv", ".tsv", ".txt", ".psv")
ENCODING_ENV = "LAKEHOUSE_DROP_ENCODING"
CHUNK = 1 << 20
SAMPLE_CHARS = 64 << 10
MAX_FIELD_CHARS = 64 << 20
# Byte order marks, longest first (a UTF-32 LE mark starts with the UTF-16 LE one).
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"))
# charset-normalizer's "chaos" (0 clean, 1 garbage) within which Windows-1252 is preferred to
# the best-scoring candidate: on short Western text the detector often ranks cp1250 or cp1258
# first, which turns "gênero" into "gęnero".
CP1252_MARGIN = 0.1


class DropClash(ValueError):
    """Two or more dropped files map to one table."""


@dataclass(frozen=True)
class DropFile:
    path: Path
    size: int
    mtime_ns: int
    clashes: tuple[str, ...] = ()  # the other files with the same spec

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def spec(self) -> str:
        return spec_of(self.path.name)

    @property
    def fingerprint(self) -> str:
        """Cheap identity of this state of the file (the sensor cannot hash big files).

        A clash is part of the state: once it is resolved the fingerprint changes, so the
        sensor requests the file again and it loads.
        """
        base = f"{self.size}-{self.mtime_ns}"
        return f"{base}+clash:{'|'.join(self.clashes)}" if self.clashes else base


def list_drop_files(folder: Path) -> list[DropFile]:
    """Files ready in the drop folder; hidden and partial (``.part``, ``.tmp``) files wait."""
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in SUFFIXES:
            stat = path.stat()
            found.append(DropFile(path, stat.st_size, stat.st_mtime_ns))
    by_spec: dict[str, list[str]] = {}
    for f in found:
        by_spec.setdefault(f.spec, []).append(f.name)
    return [DropFile(f.path, f.size, f.mtime_ns,
                     tuple(n for n in by_spec[f.spec] if n != f.name)) for f in found]


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


# -- reading a dropped file -------------------------------------------------------------------

@dataclass(frozen=True)
class Encoding:
    name: str  # the Python codec
    how: str  # how it was chosen, for the operator


def _decodes(path: Path, codec: str) -> bool:
    """Whether the whole file decodes strictly as ``codec`` (streamed)."""
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    try:
        with open(path, "rb") as src:
            while chunk := src.read(CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


# Western text keeps its accented letters apart (Ação, Amélie, Größe); the same bytes read as
# Windows-1252 from Cyrillic, Greek or CJK text come out as runs of accented letters (Ðàäóãà).
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]{3,}")


def _reads_as_western(path: Path) -> bool:
    """Whether the file is Western text in Windows-1252, Excel's CSV on Western systems.

    charset-normalizer judges short texts poorly: a one-row export holding "Ação" reads best
    to it as GBK ("A誽o"). So Windows-1252 is taken first when it decodes every byte and its
    text never runs three non-ASCII characters together.
    """
    if not _decodes(path, "cp1252"):
        return False
    with open(path, encoding="cp1252", newline="") as src:
        while chunk := src.read(CHUNK):
            if _NON_ASCII_RUN.search(chunk):
                return False
    return True


def detect_encoding(path: Path, declared: str | None = None) -> Encoding:
    """The encoding of a dropped file.

    A declared encoding wins. Otherwise: a byte order mark (UTF-8, UTF-16, UTF-32, as Excel's
    "Unicode text" export writes); else strict UTF-8 when the whole file is valid UTF-8; else
    Windows-1252 when the file reads as Western text in it (``_reads_as_western``); else the
    candidates of charset-normalizer (the detector requests ships with): Windows-1252
    (what Excel writes as CSV on Western systems, a superset of Latin-1's letters) when it
    reads about as cleanly as the best candidate, else the best candidate (cp1251, Shift-JIS,
    ...); Latin-1 when no candidate decodes the whole file (it decodes any byte, so nothing
    is lost and the bytes can be recovered).
    """
    if declared:
        codec = codecs.lookup(declared).name
        if not _decodes(path, codec):
            raise UnicodeError(f"{path.name} is not valid {codec}, the declared encoding "
                               f"(CsvDropResource.encoding or ${ENCODING_ENV}): correct the "
                               "setting, or unset it to detect the encoding; nothing was loaded")
        return Encoding(codec, "declared")
    with open(path, "rb") as src:
        head = src.read(4)
    for bom, codec in BOMS:
        if head.startswith(bom):
            return Encoding(codec, "byte order mark")
    if _decodes(path, "utf-8"):
        return Encoding("utf-8", "valid UTF-8")
    if _reads_as_western(path):
        return Encoding("cp1252", "detected (not UTF-8; Western text in Windows-1252)")
    from charset_normalizer import from_path

    matches = list(from_path(path))
    best = min((m.chaos for m in matches), default=1.0)
    ranked = [codecs.lookup(c).name for m in matches if m.chaos <= best + CP1252_MARGIN
              for c in m.could_be_from_charset if codecs.lookup(c).name == "cp1252"]
    ranked += [codecs.lookup(m.encoding).name for m in matches]
    for codec in dict.fromkeys(ranked):
        if _decodes(path, codec):
            return Encoding(codec, "detected (not UTF-8; charset-normalizer)")
    return Encoding("latin-1", "fallback (no candidate decodes every byte)")


@dataclass
class PreparedDrop:
    """A dropped file made ready for Polars: its well-formed records as UTF-8 in ``path``."""

    path: Path
    encoding: Encoding
    dialect: CsvDialect
    fields: int = 0
    records: int = 0
    # (line number, reason, the record's text as written) of each record that was set aside
    rejected: list[tuple[int, str, str]] = field(default_factory=list)


def _records(src: Iterator[str], dialect: CsvDialect) -> Iterator[tuple[int, list[str] | str, str]]:
    """(first line number, fields or the parser's complaint, text as written) per record.

    ``csv.reader`` pulls exactly the lines of one record (a quoted field may span several),
    so what it pulled is the record's text as written.
    """
    pulled: list[str] = []

    def lines() -> Iterator[str]:
        for line in src:
            pulled.append(line)
            yield line

    reader = csv.reader(lines(), delimiter=dialect.delimiter,
                        quotechar=dialect.quote_char or '"',
                        quoting=csv.QUOTE_MINIMAL if dialect.quote_char else csv.QUOTE_NONE)
    while True:
        try:
            fields: list[str] | str = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            fields = f"unreadable record: {exc}"
        text = "".join(pulled)
        first = reader.line_num - len(pulled) + 1
        pulled.clear()
        if isinstance(fields, list) and not "".join(fields).strip():
            continue  # a blank line is not a record
        yield first, fields, text.rstrip("\r\n")


@contextmanager
def prepared_drop(path: Path, declared_encoding: str | None = None) -> Iterator[PreparedDrop]:
    """Read a dropped file once: detect its encoding and dialect, set aside each record whose
    field count differs from the header's (or, without a header, from the usual count) with
    its line number, and write the others as UTF-8 CSV to a temporary file for Polars."""
    encoding = detect_encoding(path, declared_encoding)
    # The csv module's default 128 KiB per field would set aside long text fields (synopses,
    # JSON cells); the limit is process-wide and only ever raised here.
    csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD_CHARS))
    with open(path, encoding=encoding.name, newline="") as src:
        dialect = detect_dialect(src.read(SAMPLE_CHARS))
    with tempfile.TemporaryDirectory(prefix="lakehouse-drop-") as tmp:
        drop = PreparedDrop(Path(tmp) / "records.csv", encoding, dialect)
        with open(path, encoding=encoding.name, newline="") as src, \
                open(drop.path, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, delimiter=dialect.delimiter, lineterminator="\n",
                                quotechar=dialect.quote_char or '"',
                                quoting=csv.QUOTE_MINIMAL if dialect.quote_char
                                else csv.QUOTE_NONE, escapechar=None if dialect.quote_char
                                else "\\")
            records = _records(src, dialect)
            head: list[tuple[int, list[str] | str, str]] = []
            if dialect.has_header:
                for line, fields, text in records:
                    if isinstance(fields, str):
                        drop.rejected.append((line, fields, text))
                        continue
                    drop.fields = len(fields)
                    writer.writerow(fields)
                    break
            else:  # the usual field count of the first records
                for item in records:
                    head.append(item)
                    if len(head) >= 1000:
                        break
                counts = Counter(len(f) for _, f, _ in head if isinstance(f, list))
                drop.fields = counts.most_common(1)[0][0] if counts else 0
            for line, fields, text in (*head, *records):
                if isinstance(fields, str):
                    drop.rejected.append((line, fields, text))
                elif len(fields) != drop.fields:
                    drop.rejected.append((line, _ragged(len(fields), drop.fields), text))
                else:
                    writer.writerow(fields)
                    drop.records += 1
        yield drop


def _ragged(found: int, expected: int) -> str:
    more = found - expected
    what = f"{more} extra" if more > 0 else f"{-more} missing"
    return f"ragged row: {found} fields where the header has {expected} ({what})"


# The resource's fields and the variables that set them (``lakehouse.settings.env_fields``).
CSV_DROP_ENV = {"drop_dir": "LAKEHOUSE_DROP_DIR", "encoding": ENCODING_ENV}


class CsvDropResource(dg.ConfigurableResource):
    """Where CSV files are dropped to be landed and loaded, and how they are read."""

    drop_dir: str | None = Field(default=None, description="LAKEHOUSE_DROP_DIR; unset: "
                                 "./data/drop.")
    encoding: str | None = Field(default=None, description="LAKEHOUSE_DROP_ENCODING: the drops' "
                                 "encoding (a Python codec name, e.g. cp1252); unset: detected "
                                 "per file.")

    def folder(self) -> Path:
        return Path(self.drop_dir or DEFAULT_DROP_DIR).expanduser().resolve()

    def declared_encoding(self) -> str | None:
        return self.encoding or None

    def files(self) -> list[DropFile]:
        return list_drop_files(self.folder())

    def find(self, spec: str) -> DropFile | None:
        """The file of ``spec``; ``DropClash`` naming every file when more than one maps to it."""
        matches = [f for f in self.files() if f.spec == spec]
        if len(matches) > 1:
            names = ", ".join(repr(f.name) for f in matches)
            raise DropClash(
                f"{len(matches)} files in {self.folder()} map to table csv_{spec}: {names}. "
                "Nothing of them was loaded (one would replace the other). Rename all but one "
                "(a file's table is its snake-cased stem); each then loads on the next tick.")
        return matches[0] if matches else None
