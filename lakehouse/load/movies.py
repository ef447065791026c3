"""Raw snapshot versions to silver Delta tables: the work behind the silver movie assets.

Each function reads one landed raw version (streamed from a local copy), calls the pure
transform, writes the table in one commit and the bad rows to quarantine, and says what it did.
No Dagster here, so the benchmark runs exactly this code.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import queue
import shutil
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
from deltalake import ColumnProperties, CommitProperties, WriterProperties, write_deltalake

from lakehouse.lake import table_docs
from lakehouse.lake.location import Lake
from lakehouse.lake.snapshots import (
    SOURCE_PROPERTY,
    LandingState,
    built_from,
    state_key,
    write_quarantine,
    write_snapshot_table,
)
from lakehouse.transforms.imdb import (
    QUARANTINE_SCHEMA,
    Check,
    ImdbTable,
    failure_reason,
    quarantine_rows,
)
from lakehouse.transforms.movielens import (
    MOVIELENS_CSV_OPTIONS,
    MOVIELENS_TABLES,
    RATINGS_COLUMNS,
    RATINGS_KEY,
    TAGS_CHECKS,
    TAGS_COLUMNS,
    TAGS_KEY,
    MovieLensTable,
    latest_rating,
    tag_counts,
    tags_per_user,
)

Log = Callable[[str], None]


@dataclass(frozen=True)
class SilverOutcome:
    table: str
    uri: str
    changed: bool
    source: str
    quarantined: int = 0


def _noop(_: str) -> None:
    return None


class KeyHashes:
    """The key hashes of one pass, with the keys that repeat found in bounded memory.

    During the pass each batch's hashes are appended to an anonymous temporary file (8 bytes a
    row, a sequential write): nothing grows in memory with the input. At the end, only when
    needed, the file is split by the hashes' top bits into partitions of about
    ``partition_rows`` hashes, and each partition is sorted alone to find its repeats; so the
    memory is that of one partition whatever the size of the file (about 0.7 GB of hashes for
    IMDB's 90M principals used to be held and sorted whole).
    """

    def __init__(self, partition_rows: int = 4 << 20):
        self.partition_rows = partition_rows
        self.rows = 0
        self.dtype: pl.DataType = pl.UInt64()
        self._file: IO[bytes] | None = None
        self._repeated: pl.Series | None = None

    def add(self, hashes: pl.Series) -> None:
        if hashes.len() == 0:
            return
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="lakehouse-keys-")  # noqa: SIM115 (close())
        self.dtype = hashes.dtype
        # An exact integer key (ratings) may be negative: its bits are kept as they are.
        self._file.write(hashes.to_numpy().astype(np.int64 if hashes.dtype.is_signed_integer()
                                                  else np.uint64, copy=False).tobytes())
        self.rows += hashes.len()
        self._repeated = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file, self.rows, self._repeated = None, 0, None

    def _chunks(self, chunk_rows: int) -> Iterator[np.ndarray]:
        assert self._file is not None
        self._file.flush()
        self._file.seek(0)
        while True:
            chunk = np.fromfile(self._file, dtype=np.uint64, count=chunk_rows)
            if chunk.size == 0:
                return
            yield chunk

    def repeated(self) -> pl.Series:
        """Every hash seen more than once (each once), of the hashes' own type."""
        if self._repeated is None:
            found = self._find_repeated()
            if self.dtype.is_signed_integer():
                found = found.view(np.int64)
            self._repeated = pl.Series("h", found).cast(self.dtype)
        return self._repeated

    def _find_repeated(self) -> np.ndarray:
        if self.rows == 0:
            return np.empty(0, np.uint64)
        # At most 512 partition files open at once, each sorted alone.
        bits = min(9, math.ceil(math.log2(self.rows / self.partition_rows))) \
            if self.rows > self.partition_rows else 0
        if bits == 0:
            return _repeats(np.concatenate(list(self._chunks(self.rows))))
        shift = np.uint64(64 - bits)
        with tempfile.TemporaryDirectory(prefix="lakehouse-keys-") as tmp:
            parts = [open(Path(tmp) / f"{i}", "wb") for i in range(1 << bits)]  # noqa: SIM115
            try:
                for chunk in self._chunks(self.partition_rows):
                    # Mixed first: an exact key (user, movie) has its top bits all zero.
                    bucket = ((chunk * _MIX) >> shift).astype(np.int64)
                    order = np.argsort(bucket, kind="stable")
                    bounds = np.searchsorted(bucket[order], np.arange((1 << bits) + 1))
                    ordered = chunk[order]
                    for i, part in enumerate(parts):
                        if bounds[i + 1] > bounds[i]:
                            part.write(ordered[bounds[i]:bounds[i + 1]].tobytes())
            finally:
                for part in parts:
                    part.close()
            found = [_repeats(np.fromfile(Path(tmp) / f"{i}", dtype=np.uint64))
                     for i in range(1 << bits)]
        return np.concatenate(found)


_MIX = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: odd, so a bijection on 64 bits


def _repeats(hashes: np.ndarray) -> np.ndarray:
    hashes = np.sort(hashes)
    return np.unique(hashes[1:][hashes[1:] == hashes[:-1]])


class StreamSplit:
    """A one-pass load: raw text rows in, typed good rows out, bad rows and key hashes aside.

    ``prepare`` adds to a group of rows' Polars plan the typed columns, the reason
    of the first failing check, the key hash and the raw row as a struct; the per-batch
    callback only splits on the reason, so the Python work per batch stays tiny. Bad rows are
    kept for quarantine; the key hashes of good rows go to a spill file (``KeyHashes``) that
    finds repeated keys after the pass without holding the rows or the keys.

    The real files (IMDB's, MovieLens ratings) come sorted by their key: each batch records
    whether its keys strictly increase and its first and last key, and when every batch does
    and their ranges do not overlap, no key can repeat and the hashes are never read back.
    """

    def __init__(self, checks: Sequence[Check], columns: Sequence[pl.Expr], key: Sequence[str],
                 raw_key: Sequence[str], exact_key: pl.Expr | None = None):
        self.checks, self.columns = list(checks), list(columns)
        self.key, self.raw_key = list(key), list(raw_key)
        # An integer that is the key itself (ratings: user, then movie), used instead of a hash.
        self.exact_key = exact_key
        self.hashes = KeyHashes()
        self.reset()

    def reset(self) -> None:
        self.bad: list[pl.DataFrame] = []
        self.hashes.close()
        self.runs: list[tuple[tuple, tuple, bool]] = []

    def key_expr(self) -> pl.Expr:
        if self.exact_key is not None:
            return self.exact_key.alias("_key_hash")
        return typed_key_hash(self.key)

    def typed(self, rows: pl.LazyFrame) -> pl.LazyFrame:
        return rows.select(self.columns)

    def prepare(self, raw: pl.LazyFrame) -> pl.LazyFrame:
        names = [c for c in raw.collect_schema().names() if c != "_index"]
        return raw.select(
            *self.columns,
            failure_reason(self.checks),
            pl.struct(names).alias("_raw"),
            pl.col("_index"),
        ).with_columns(self.key_expr())

    def _increasing(self) -> pl.Expr:
        """True when each row's key is greater than the previous row's (tuple order)."""
        greater: pl.Expr | None = None
        for column in reversed(self.key):
            now, before = pl.col(column), pl.col(column).shift(1)
            greater = (now > before) if greater is None else \
                (now > before) | ((now == before) & greater)
        assert greater is not None
        return greater.slice(1).fill_null(False).all()

    def __call__(self, batch: pl.DataFrame) -> pl.DataFrame:
        ok = batch["_reason"].is_null()
        if not ok.all():
            self.bad.append(batch.filter(~ok).select("_raw", "_index").unnest("_raw"))
            batch = batch.filter(ok)
        if batch.height:
            hashes = batch["_key_hash"]
            self.hashes.add(hashes)
            if self.exact_key is not None:
                # The exact key orders as the key's tuple: its run is read off the integers
                # (a Polars plan per batch for the tuples cost ratings about 5% of their load).
                exact = hashes.to_numpy()
                self.runs.append(((int(exact[0]),), (int(exact[-1]),),
                                  bool(np.all(exact[1:] > exact[:-1]))))
            else:
                keys = batch.select(self.key)
                strict = batch.height < 2 or bool(keys.select(self._increasing()).item())
                self.runs.append((keys.row(0), keys.row(-1), strict))
        # The typed columns as they are (a DataFrame.drop costs a plan, about 0.6 ms a batch).
        return pl.DataFrame([batch.get_column(c) for c in batch.columns if c not in _SPLIT_COLUMNS])

    def _runs_prove_unique(self) -> bool:
        if not all(strict for _, _, strict in self.runs):
            return False
        try:
            ranges = sorted((lo, hi) for lo, hi, _ in self.runs)
        except TypeError:  # a null in a key: no proof
            return False
        return all(a[1] < b[0] for a, b in zip(ranges, ranges[1:], strict=False))

    def duplicate_hashes(self) -> pl.Series:
        if self._runs_prove_unique():
            return pl.Series("h", [], pl.UInt64)
        return self.hashes.repeated()


_SPLIT_COLUMNS = frozenset({"_reason", "_key_hash", "_raw", "_index"})  # prepare's, not typed


def typed_key_hash(key: Sequence[str]) -> pl.Expr:
    return pl.struct(list(key)).hash(seed=7).alias("_key_hash")


# The TSV is read in blocks of this size. Arrow's streaming reader decompresses and reads ahead
# in a background thread, queueing up to 32 blocks while the write (slower than a gunzip) drains
# them: with 8 MiB blocks that queue held up to about 256 MiB of text plus its parsed batches,
# filled only once a file was big enough, so a stage's peak RSS grew with its input until that
# ceiling (IMDB crew at a quarter of the real size 540 MiB, at the real size 775 MiB). With
# 1 MiB blocks it holds at most a few tens of MiB at any size.
TSV_BLOCK_BYTES = 1 << 20
# The blocks' batches are typed, checked and hashed in groups of about this many bytes, so
# Polars' fixed cost per call (a plan, a thread pool's wake-up) is paid as with the old 8 MiB
# blocks, not eight times as often; a group is at most 8 MiB of text however big the file.
TSV_GROUP_BYTES = 8 << 20
# Rows per Parquet row group of a one-pass load's Delta files. delta-rs' default (about 1M rows)
# holds a row group's encoded pages in memory until it is full and then copies it out whole, a
# peak that only files of millions of rows reach (IMDB episodes, read in 1 MiB blocks: 344 MiB
# at a quarter of the real size, 383 MiB at the real size). The same order as the row groups of
# Polars' streaming sink (100,000 rows: the other silver tables) and DuckDB's (122,880).
SILVER_ROW_GROUP_ROWS = 1 << 18


def silver_writer(schema: pa.Schema | None = None) -> WriterProperties:
    """The Parquet settings of the one-pass loads' Delta files (snappy, delta-rs' default, said
    again: WriterProperties without it means uncompressed).

    A timestamp column of ``schema`` is written without a dictionary: its values are nearly
    all distinct, so the writer built a dictionary only to give it up for plain pages (for
    ml-32m's ratings at 0.4 of the real size, 0.2-0.3 s of CPU of the load's 4-5 s, and a file
    of 144 MiB instead of 131 MiB)."""
    plain = {f.name: ColumnProperties(dictionary_enabled=False) for f in schema or []
             if pa.types.is_timestamp(f.type)}
    return WriterProperties(compression="SNAPPY", max_row_group_size=SILVER_ROW_GROUP_ROWS,
                            column_properties=plain or None)


@dataclass(frozen=True)
class TextFormat:
    """How a raw text file splits into rows and fields (every field read as text)."""

    delimiter: str
    quote_char: str | None  # None: a quote is data (IMDB titles have unbalanced ones)
    null: str  # a field with this text is null ("" in a CSV: unquoted and empty only)
    # Rows as Polars' CSV reader made them (MovieLens' loads used it, and their quarantine keeps
    # its record indexes): a blank line is a row (of nulls), and blocks are parsed in order on
    # one thread, which is what lets pyarrow number the rows it rejects (a parallel parse does
    # not), so a rejected row and every row after it keep their index in the file.
    numbered: bool = False
    # Read blocks and typed groups (``TSV_BLOCK_BYTES``, ``TSV_GROUP_BYTES``).
    block_bytes: int = TSV_BLOCK_BYTES
    group_bytes: int = TSV_GROUP_BYTES


IMDB_TSV = TextFormat("\t", None, "\\N")
# MovieLens ratings rows are narrow (four short numbers): 8 MiB of them is 225,000 rows, and
# typing and checking groups that big peaked about 120 MiB higher than 2 MiB groups (the read
# and checks of ml-32m's ratings at a tenth and at 0.4 of its size: 397 and 402 MiB against
# 284 and 279 MiB, in the same CPU time); Arrow's read-ahead of 1 MiB blocks held 37 MiB, of
# 256 KiB blocks 9 MiB.
MOVIELENS_CSV = TextFormat(",", '"', "", numbered=True, block_bytes=256 << 10,
                           group_bytes=2 << 20)


@dataclass(frozen=True)
class ZipMember:
    """A file inside a zip, read straight out of it: ml-32m's ratings.csv (870 MB) written to a
    temporary file and read back cost 2.4 s of CPU more than its inflate and parse (8.4 s
    against 5.9 s)."""

    zip_path: Path
    name: str  # the member's name in the zip
    size: int  # uncompressed bytes

    def open(self) -> IO[bytes]:
        # The member keeps the zip's file open until it is closed itself.
        return zipfile.ZipFile(self.zip_path).open(self.name)


TextFile = Path | ZipMember


def _file_size(path: TextFile) -> int:
    return path.size if isinstance(path, ZipMember) else path.stat().st_size


def _text_reader(path: TextFile, invalid: list[tuple[int | None, str, str]],
                 fmt: TextFormat = IMDB_TSV) -> tuple[list[str], pacsv.CSVStreamingReader]:
    """A pyarrow streaming reader of a (gzip) TSV or CSV, every column as text: decompression
    runs ahead in its own thread while blocks are parsed, so nothing waits for a full gunzip,
    and memory is bounded by the block size, not by the file's (``fmt.block_bytes``).

    A row with the wrong number of fields is left out and added to ``invalid`` as (its record
    index when the format is ``numbered``, else None; the reason; its text)."""
    if isinstance(path, ZipMember):
        first, stream = path.open(), pa.PythonFile(path.open(), mode="r")
    else:
        first = gzip.open(path) if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115
        stream = pa.input_stream(str(path), compression="gzip" if path.suffix == ".gz" else None)
    with io.TextIOWrapper(first, encoding="utf-8-sig", newline="") as head:
        columns = next(csv.reader(
            [head.readline().rstrip("\r\n")], delimiter=fmt.delimiter,
            quotechar=fmt.quote_char or '"',
            quoting=csv.QUOTE_MINIMAL if fmt.quote_char else csv.QUOTE_NONE))

    def on_invalid(row: pacsv.InvalidRow) -> str:
        # pyarrow numbers rows from 1 with the header: the data's first row is number 2.
        index = row.number - 2 if fmt.numbered and row.number is not None else None
        invalid.append((index, f"expected {row.expected_columns} fields, got "
                        f"{row.actual_columns}", row.text))
        return "skip"

    quoted = fmt.quote_char is not None
    reader = pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(block_size=fmt.block_bytes, use_threads=not fmt.numbered),
        parse_options=pacsv.ParseOptions(
            delimiter=fmt.delimiter, quote_char=fmt.quote_char if quoted else False,
            double_quote=quoted, escape_char=False, newlines_in_values=quoted,
            ignore_empty_lines=not fmt.numbered, invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(columns, pa.string()), null_values=[fmt.null],
            strings_can_be_null=True, quoted_strings_can_be_null=False),
    )
    return columns, reader


def _record_indexes(first: int, count: int, invalid: list[tuple[int | None, str, str]]
                    ) -> np.ndarray:
    """The record indexes of good rows ``first`` .. ``first + count - 1`` (counted among the
    good rows) of a file whose reader left out the ``invalid`` rows: the j-th good row is the
    j-th index that no invalid row holds. Only the invalid rows before them matter, and those
    are all known once their block is parsed."""
    good = np.arange(first, first + count, dtype=np.int64)
    skipped = np.array([i for i, _, _ in invalid if i is not None], dtype=np.int64)
    if skipped.size == 0:
        return good
    # Each invalid row's count of good rows before it: the j-th good row is after those <= j.
    before = np.sort(skipped) - np.arange(skipped.size)
    return good + np.searchsorted(before, good, side="right")


def _grouped(reader: Iterator[pa.RecordBatch], nbytes: int = TSV_GROUP_BYTES
             ) -> Iterator[pa.Table]:
    """The reader's batches gathered into tables of about ``nbytes`` (the last one smaller)."""
    group: list[pa.RecordBatch] = []
    size = 0
    for batch in reader:
        group.append(batch)
        size += batch.nbytes
        if size >= nbytes:
            yield pa.Table.from_batches(group)
            group, size = [], 0
    if group:
        yield pa.Table.from_batches(group)


class _KeysRepeat(Exception):
    """Raised at the end of a pass whose keys repeat: the write aborts before its commit."""


def _read_ahead(items: Iterator[pa.Table], depth: int = 2) -> Iterator[pa.Table]:
    """``items`` made in a thread of their own, at most ``depth`` ahead: the next group's read
    (inflate, parse: pyarrow and zlib let go of the GIL) overlaps this group's checks and write.
    A MovieLens read is serial (``numbered``): at the real size, without this the stage took
    16-17 s against the Polars load's 13 s, with it 15-16 s against 17-18 s (alternated runs,
    the same CPU time)."""
    done = object()
    handoff: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False  # the consumer is gone

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(done)
        except BaseException as exc:  # noqa: BLE001 (handed to the consumer, raised there)
            put(exc)

    threading.Thread(target=produce, name="lakehouse-read-ahead", daemon=True).start()
    try:
        while (item := handoff.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def _checked_groups(path: TextFile, fmt: TextFormat, split: StreamSplit,
                    invalid: list[tuple[int | None, str, str]]
                    ) -> tuple[pl.Schema, Iterator[pl.DataFrame]]:
    """The typed schema of the file's good rows, and the file read in groups of blocks, each
    with ``split.prepare``'s columns (typed columns, reason, key hash, raw row, ``_index``)."""
    columns, reader = _text_reader(path, invalid, fmt)
    empty = pl.DataFrame(schema=dict.fromkeys(columns, pl.String))

    def groups() -> Iterator[pl.DataFrame]:
        offset = 0  # good rows so far
        for rows in _grouped(reader, fmt.group_bytes):
            frame = pl.from_arrow(rows)
            assert isinstance(frame, pl.DataFrame)
            index = _record_indexes(offset, frame.height, invalid) if fmt.numbered else \
                np.arange(offset, offset + frame.height, dtype=np.int64)
            offset += frame.height
            yield split.prepare(frame.with_columns(pl.Series("_index", index)).lazy()).collect()

    # A numbered read is serial (IMDB's is parallel already, its gunzip ahead in a thread): the
    # next group is read, typed and checked in a thread while this one is written.
    return split.typed(empty.lazy()).collect_schema(), \
        _read_ahead(groups()) if fmt.numbered else groups()


def _write_batches(lake: Lake, uri: str, schema: pl.Schema, frames: Iterator[pl.DataFrame],
                   version_tag: str) -> None:
    """``frames`` (of ``schema``) as the table's new version, written as they come in bounded
    row groups (``silver_writer``); the column comments ride in the same commit."""
    arrow_schema = table_docs.annotate_schema(uri, pl.DataFrame(schema=schema).to_arrow().schema)
    failed: list[Exception] = []

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            for frame in frames:
                yield from frame.to_arrow().cast(arrow_schema).to_batches()
        except Exception as exc:
            failed.append(exc)
            raise

    commit = CommitProperties(custom_metadata={SOURCE_PROPERTY: version_tag})
    try:
        write_deltalake(
            uri, pa.RecordBatchReader.from_batches(arrow_schema, batches()), mode="overwrite",
            schema_mode="overwrite", storage_options=lake.storage_options or None,
            commit_properties=commit, writer_properties=silver_writer(arrow_schema),
            **table_docs.creation_options(uri))
    except Exception:
        # delta-rs wraps what the batches raised in its own error (a text): raise the original,
        # so a file that cannot be read (``_reading``) and ``_KeysRepeat`` are told apart.
        if failed:
            raise failed[0] from None
        raise
    table_docs.document(uri, lake.storage_options, commit_properties=commit)


def load_text_one_commit(lake: Lake, uri: str, path: TextFile, split: StreamSplit,
                         dedup: Callable[[pl.LazyFrame], pl.LazyFrame], version_tag: str,
                         log: Log = _noop, fmt: TextFormat = IMDB_TSV
                         ) -> list[tuple[int | None, str, str]]:
    """A TSV or CSV to a Delta table in one streaming pass and one commit; returns the rows
    pyarrow could not split into the header's fields.

    When keys repeat (known only at the end of the pass), the write is abandoned before its
    commit and a second pass holds back just the repeated keys and deduplicates them.
    """
    def write(repeated: pl.Series | None) -> list[tuple[int | None, str, str]]:
        invalid: list[tuple[int | None, str, str]] = []
        split.reset()
        schema, groups = _checked_groups(path, fmt, split, invalid)

        def frames() -> Iterator[pl.DataFrame]:
            held = []
            for prepared in groups:
                if repeated is not None:
                    # A bad row's exact key (ratings) may be null: not held, and not lost.
                    mask = prepared["_key_hash"].is_in(repeated.implode()).fill_null(False)
                    held.append(split(prepared.filter(mask)))
                    prepared = prepared.filter(~mask)
                yield split(prepared)
            if repeated is None and split.duplicate_hashes().len():
                raise _KeysRepeat
            if held:
                yield dedup(pl.concat(held).lazy()).collect()

        _write_batches(lake, uri, schema, frames(), version_tag)
        return invalid

    try:
        return write(None)
    except _KeysRepeat:
        repeated = split.duplicate_hashes()
        log(f"{uri}: {repeated.len()} keys repeat; second pass keeps one row each")
        return write(repeated)
    finally:
        split.hashes.close()


# A grouping over a whole file (MovieLens tags) is done part by part: the rows are spilled to
# temporary files by a hash of the grouping key, one part for about this many bytes of the
# raw file, and each part is grouped alone, so the memory is that of one part at any size
# (4 MiB parts: the tags of ml-32m at a tenth and at 0.4 of its size peaked at 367 and 409 MiB,
# 1 MiB parts at 357 and 364 MiB, in the same time).
SPILL_PART_BYTES = 1 << 20


class HashParts:
    """Rows spilled to temporary Arrow files by a hash of ``key``, read back part by part:
    every row of one key is in one part."""

    def __init__(self, key: Sequence[str], parts: int, folder: Path):
        self.key, self.parts, self.folder = list(key), max(1, min(parts, 256)), folder
        self._writers: dict[int, pa.ipc.RecordBatchStreamWriter] = {}

    def add(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        part = pl.struct(self.key).hash(seed=11) % self.parts
        for (i,), rows in frame.with_columns(part.alias("_part")).partition_by(
                "_part", as_dict=True, include_key=False).items():
            table = rows.to_arrow()
            writer = self._writers.get(i)
            if writer is None:
                writer = self._writers[i] = pa.ipc.new_stream(
                    str(self.folder / f"part-{i}.arrow"), table.schema)
            writer.write_table(table)

    def close(self) -> None:
        """The spill is complete: every part's file is finished."""
        for writer in self._writers.values():
            writer.close()

    def frames(self) -> Iterator[pl.DataFrame]:
        """Each part's rows, one part at a time (after ``close``)."""
        for i in sorted(self._writers):
            with pa.ipc.open_stream(str(self.folder / f"part-{i}.arrow")) as part:
                frame = pl.from_arrow(part.read_all())
            assert isinstance(frame, pl.DataFrame)
            yield frame


class UnreadableRawFile(ValueError):
    """A landed raw file that cannot be read as what it should be (a gzip that is not one or is
    cut short, a truncated zip): only the tables built from that file fail, naming it."""

    def __init__(self, key: str, what: str, error: BaseException, state_key: str):
        self.key = key
        super().__init__(
            f"{key}: the landed {what} cannot be read ({type(error).__name__}: {error}). Nothing "
            f"was committed from it; tables built from other files are not affected. Land a good "
            f"copy (delete {state_key} so the next run downloads it again) and re-materialize.")


# What reading a broken gzip, zip or TSV raises (gzip.BadGzipFile is an OSError).
_FILE_ERRORS = (OSError, EOFError, zlib.error, zipfile.BadZipFile, pa.ArrowException)


@contextmanager
def _reading(key: str, what: str, state_key: str) -> Iterator[None]:
    try:
        yield
    except _FILE_ERRORS as error:
        raise UnreadableRawFile(key, what, error, state_key) from error


def build_imdb_table(lake: Lake, spec: ImdbTable, state: LandingState,
                     log: Log = _noop) -> SilverOutcome:
    """One IMDB dataset version to its silver table in one streaming pass and one commit; a
    no-op when the table was already built from this version."""
    uri = lake.table_uri("silver", spec.table)
    if built_from(lake, uri) == state.version_tag:
        log(f"{spec.table}: already built from {state.key}; nothing to do")
        return SilverOutcome(spec.table, uri, False, state.key)
    split = StreamSplit(spec.checks, spec.columns, spec.key, spec.raw_key)
    with lake.local_copy(state.key) as gz:
        log(f"{spec.table}: streaming {state.key} ({state.size / 2**20:.1f} MiB gzip)")
        with _reading(state.key, "gzip TSV", state_key(state.prefix)):
            invalid = load_text_one_commit(
                lake, uri, gz, split, lambda lf: lf.unique(subset=list(spec.key), keep="any"),
                state.version_tag, log)
    bad = _quarantine_frame(split, invalid, source_file=state.key, source="imdb",
                            table=spec.table, separator="\t", null_text="\\N")
    quarantined = write_quarantine(lake, bad, state.key)
    if quarantined:
        log(f"{spec.table}: {quarantined} rows quarantined")
    return SilverOutcome(spec.table, uri, True, state.key, quarantined)


def _quarantine_frame(split: StreamSplit, invalid: list[tuple[int | None, str, str]], *,
                      source_file: str, source: str, table: str, separator: str,
                      null_text: str) -> pl.DataFrame:
    parts = []
    if split.bad:
        parts.append(quarantine_rows(pl.concat(split.bad).lazy(), split.checks,
                                     source_file=source_file, source=source, table=table,
                                     separator=separator, null_text=null_text).collect())
    if invalid:
        parts.append(pl.DataFrame(
            {"_source_file": source_file, "record_index": [i for i, _, _ in invalid],
             "source": source, "table": table, "reason": [r for _, r, _ in invalid],
             "raw_record": [t for _, _, t in invalid]},
            schema=QUARANTINE_SCHEMA))
    return pl.concat(parts) if parts else pl.DataFrame(schema=QUARANTINE_SCHEMA)


MOVIELENS_SILVER = (*(t.table for t in MOVIELENS_TABLES), "movielens_tag_counts")


WANTED_MEMBERS = frozenset(t.member for t in MOVIELENS_TABLES)


# The members the one-pass loads read straight out of the zip; the small ones are extracted
# for Polars' transforms.
STREAMED_MEMBERS = frozenset({"ratings.csv", "tags.csv"})


def _extract(zip_path: Path, folder: Path) -> dict[str, TextFile]:
    """The CSV members of the zip: ``{"ratings.csv": ZipMember(...), "movies.csv": path, ...}``,
    the small ones streamed out into ``folder``."""
    found: dict[str, TextFile] = {}
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            name = Path(info.filename).name
            if name in STREAMED_MEMBERS and not info.is_dir():
                found[name] = ZipMember(zip_path, info.filename, info.file_size)
            elif name in WANTED_MEMBERS and not info.is_dir():  # ml-25m's genome files: skipped
                dest = folder / name
                with zf.open(info) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out, 8 << 20)
                found[name] = dest
    return found


def build_movielens_tables(lake: Lake, state: LandingState, tables: set[str] | None = None,
                           log: Log = _noop) -> list[SilverOutcome]:
    """One MovieLens release zip to its silver tables; each a no-op when already built from it."""
    wanted = set(MOVIELENS_SILVER) if tables is None else set(tables)
    outcomes: list[SilverOutcome] = []
    todo = []
    for name in MOVIELENS_SILVER:
        if name not in wanted:
            continue
        uri = lake.table_uri("silver", name)
        if built_from(lake, uri) == state.version_tag:
            log(f"{name}: already built from {state.key}; nothing to do")
            outcomes.append(SilverOutcome(name, uri, False, state.key))
        else:
            todo.append(name)
    if not todo:
        return outcomes
    with lake.local_copy(state.key) as zip_path, \
            tempfile.TemporaryDirectory(prefix="lakehouse-ml-") as tmp:
        with _reading(state.key, "zip", state_key(state.prefix)):
            members = _extract(zip_path, Path(tmp))
        counts_uri = lake.table_uri("silver", "movielens_tag_counts")
        for spec in MOVIELENS_TABLES:
            needs_counts = spec.table == "movielens_tags" and "movielens_tag_counts" in todo
            if spec.table not in todo and not needs_counts:
                continue
            path = members.get(spec.member)
            if path is None:
                raise FileNotFoundError(f"{state.key} has no {spec.member}")
            source_file = f"{state.key}#{spec.member}"
            uri = lake.table_uri("silver", spec.table)
            log(f"{spec.table}: streaming {spec.member}")
            with _reading(source_file, "CSV", state_key(state.prefix)):
                if spec.table == "movielens_tags":
                    bad = load_movielens_tags(
                        lake, path, source_file, state.version_tag,
                        uri if spec.table in todo else None, counts_uri if needs_counts else None)
                else:
                    bad = load_movielens_member(lake, uri, path, spec, source_file,
                                                state.version_tag, log)
            if spec.table in todo:
                quarantined = write_quarantine(lake, bad, source_file)
                outcomes.append(SilverOutcome(spec.table, uri, True, state.key, quarantined))
            if needs_counts:
                outcomes.append(SilverOutcome("movielens_tag_counts", counts_uri, True,
                                              state.key))
    return outcomes


def _movielens_quarantine(split: StreamSplit, invalid: list[tuple[int | None, str, str]],
                          source_file: str, table: str) -> pl.DataFrame:
    return _quarantine_frame(split, invalid, source_file=source_file, source="movielens",
                             table=table, separator=",", null_text="")


def load_movielens_member(lake: Lake, uri: str, path: TextFile, spec: MovieLensTable,
                          source_file: str, version_tag: str, log: Log = _noop) -> pl.DataFrame:
    """One MovieLens CSV but tags.csv (``load_movielens_tags``, which writes two tables) to its
    table; returns its quarantine rows. Ratings (32M rows in ml-32m) take the one-pass load of
    the IMDB files, read as Polars reads a CSV; the small files the plain transform."""
    if spec.table == "movielens_ratings":
        split = StreamSplit(spec.checks, RATINGS_COLUMNS, RATINGS_KEY, ("userId", "movieId"),
                            exact_key=pl.col("user_id").cast(pl.Int64) * (1 << 32)
                            + pl.col("movie_id").cast(pl.Int64))
        invalid = load_text_one_commit(lake, uri, path, split, latest_rating, version_tag, log,
                                       MOVIELENS_CSV)
        return _movielens_quarantine(split, invalid, source_file, spec.table)
    assert isinstance(path, Path)  # the small members are extracted (``_extract``)
    write_snapshot_table(lake, uri, spec.transform(pl.scan_csv(path, **MOVIELENS_CSV_OPTIONS)),
                         version_tag)
    return quarantine_rows(pl.scan_csv(path, row_index_name="_index", **MOVIELENS_CSV_OPTIONS),
                           spec.checks, source_file=source_file, source="movielens",
                           table=spec.table, separator=",", null_text="").collect()


def load_movielens_tags(lake: Lake, path: TextFile, source_file: str, version_tag: str,
                        tags_uri: str | None, counts_uri: str | None) -> pl.DataFrame:
    """tags.csv to ``movielens_tags`` and/or ``movielens_tag_counts`` (each written when its
    uri is given) in one read; returns the quarantine rows.

    Both tables group the whole file, and both groupings lie within one (movie_id, tag): the
    checked, typed rows are spilled by a hash of (movie_id, tag) (``HashParts``) and each part
    is grouped alone, by the very transforms of ``movielens_tags`` and
    ``movielens_tag_counts``, so the memory is one part's whatever the file's size.
    """
    split = StreamSplit(TAGS_CHECKS, TAGS_COLUMNS, TAGS_KEY, ("userId", "movieId", "tag"))
    invalid: list[tuple[int | None, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="lakehouse-tags-") as tmp:
        parts = HashParts(("movie_id", "tag"), math.ceil(_file_size(path) / SPILL_PART_BYTES),
                          Path(tmp))
        schema, groups = _checked_groups(path, MOVIELENS_CSV, split, invalid)
        try:
            for prepared in groups:
                parts.add(split(prepared))
        finally:
            parts.close()
            split.hashes.close()
        for uri, grouping in ((tags_uri, tags_per_user), (counts_uri, tag_counts)):
            if uri is None:
                continue
            _write_batches(lake, uri, grouping(pl.LazyFrame(schema=schema)).collect_schema(),
                           (grouping(part.lazy()).collect() for part in parts.frames()),
                           version_tag)
    return _movielens_quarantine(split, invalid, source_file, "movielens_tags")
