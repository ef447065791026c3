"""Raw snapshot versions to silver Delta tables: the work behind the silver movie assets.

Each function reads one landed raw version (streamed from a local copy), calls the pure
transform, writes the table in one commit and the bad rows to quarantine, and says what it did.
No Dagster here, so the benchmark runs exactly this code.
"""

from __future__ import annotations

import gzip
import math
import shutil
import tempfile
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
from deltalake import CommitProperties, WriterProperties, write_deltalake

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
    MovieLensTable,
    latest_rating,
    movielens_tag_counts,
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

    ``prepare`` adds to the (parallel, streaming) Polars plan the typed columns, the reason
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
            self.hashes.add(batch["_key_hash"])
            keys = batch.select(self.key)
            strict = batch.height < 2 or bool(keys.select(self._increasing()).item())
            self.runs.append((keys.row(0), keys.row(-1), strict))
        return batch.drop("_reason", "_key_hash", "_raw", "_index")

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


def typed_key_hash(key: Sequence[str]) -> pl.Expr:
    return pl.struct(list(key)).hash(seed=7).alias("_key_hash")


def _dedup_if_needed(lake: Lake, uri: str, split: StreamSplit,
                     dedup: Callable[[pl.LazyFrame], pl.LazyFrame], version_tag: str,
                     log: Log) -> int:
    """Replace rows of repeated keys by their dedup (a second commit, only when keys repeat)."""
    repeated = split.duplicate_hashes()
    if repeated.len() == 0:
        return 0
    log(f"{uri}: {repeated.len()} keys repeat; keeping one row each")
    table = pl.scan_delta(uri, storage_options=lake.storage_options or None)
    hashed = table.with_columns(split.key_expr())
    in_repeated = pl.col("_key_hash").is_in(repeated.implode())
    fixed = pl.concat([
        hashed.filter(~in_repeated).drop("_key_hash"),
        hashed.filter(in_repeated).drop("_key_hash").pipe(dedup),
    ])
    write_snapshot_table(lake, uri, fixed, version_tag)
    return repeated.len()


def load_csv_one_pass(lake: Lake, uri: str, path: Path, csv_options: dict, split: StreamSplit,
                      dedup: Callable[[pl.LazyFrame], pl.LazyFrame], version_tag: str,
                      log: Log = _noop) -> None:
    """A plain CSV to a Delta table in one streaming pass (Polars), one commit."""
    raw = pl.scan_csv(path, row_index_name="_index", **csv_options)
    schema = split.typed(raw.head(0)).collect_schema()
    plan = split.prepare(raw).map_batches(split, schema=schema, streamable=True)
    try:
        write_snapshot_table(lake, uri, plan, version_tag)
        _dedup_if_needed(lake, uri, split, dedup, version_tag, log)
    finally:
        split.hashes.close()


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


def silver_writer() -> WriterProperties:
    """The Parquet settings of the one-pass loads' Delta files (snappy, delta-rs' default, said
    again: WriterProperties without it means uncompressed)."""
    return WriterProperties(compression="SNAPPY", max_row_group_size=SILVER_ROW_GROUP_ROWS)


def _tsv_reader(path: Path, invalid: list[tuple[int | None, str, str]],
                block_size: int = TSV_BLOCK_BYTES
                ) -> tuple[list[str], pacsv.CSVStreamingReader]:
    """A pyarrow streaming reader of a (gzip) TSV, every column as text: decompression runs
    ahead in its own thread while blocks are parsed in parallel, so nothing waits for a full
    gunzip, and memory is bounded by the block size, not by the file's (``TSV_BLOCK_BYTES``)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as head:
        columns = head.readline().rstrip("\n").split("\t")

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append((row.number, f"expected {row.expected_columns} fields, got "
                        f"{row.actual_columns}", row.text))
        return "skip"

    reader = pacsv.open_csv(
        pa.input_stream(str(path), compression="gzip" if path.suffix == ".gz" else None),
        read_options=pacsv.ReadOptions(block_size=block_size, use_threads=True),
        parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False, double_quote=False,
                                         escape_char=False, newlines_in_values=False,
                                         invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(columns, pa.string()), null_values=["\\N"],
            strings_can_be_null=True, quoted_strings_can_be_null=False),
    )
    return columns, reader


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


def load_tsv_one_commit(lake: Lake, uri: str, path: Path, split: StreamSplit,
                        dedup: Callable[[pl.LazyFrame], pl.LazyFrame], version_tag: str,
                        log: Log = _noop) -> list[tuple[int | None, str, str]]:
    """A TSV to a Delta table in one streaming pass and one commit; returns the rows pyarrow
    could not split into the header's fields.

    When keys repeat (known only at the end of the pass), the write is abandoned before its
    commit and a second pass holds back just the repeated keys and deduplicates them.
    """
    def write(repeated: pl.Series | None) -> list[tuple[int | None, str, str]]:
        invalid: list[tuple[int | None, str, str]] = []
        split.reset()
        columns, reader = _tsv_reader(path, invalid)
        empty = pl.DataFrame(schema=dict.fromkeys(columns, pl.String))
        # The column comments ride in this one commit (table_docs).
        schema = table_docs.annotate_schema(uri, split.typed(empty.lazy()).collect().to_arrow().schema)

        def batches() -> Iterator[pa.RecordBatch]:
            offset, held = 0, []
            for rows in _grouped(reader):
                frame = pl.from_arrow(rows)
                assert isinstance(frame, pl.DataFrame)
                frame = frame.with_columns(pl.int_range(offset, offset + frame.height,
                                                        dtype=pl.Int64).alias("_index"))
                offset += frame.height
                prepared = split.prepare(frame.lazy()).collect()
                if repeated is not None:
                    mask = prepared["_key_hash"].is_in(repeated.implode())
                    held.append(split(prepared.filter(mask)))
                    prepared = prepared.filter(~mask)
                good = split(prepared)
                yield from good.to_arrow().cast(schema).to_batches()
            if repeated is None and split.duplicate_hashes().len():
                raise _KeysRepeat
            if held:
                deduped = dedup(pl.concat(held).lazy()).collect()
                yield from deduped.to_arrow().cast(schema).to_batches()

        write_deltalake(
            uri, pa.RecordBatchReader.from_batches(schema, batches()), mode="overwrite",
            schema_mode="overwrite", storage_options=lake.storage_options or None,
            commit_properties=CommitProperties(custom_metadata={SOURCE_PROPERTY: version_tag}),
            writer_properties=silver_writer(), **table_docs.creation_options(uri))
        table_docs.document(uri, lake.storage_options, commit_properties=CommitProperties(
            custom_metadata={SOURCE_PROPERTY: version_tag}))
        return invalid

    try:
        return write(None)
    except Exception as exc:  # the writer wraps what the batch iterator raised
        repeated = split.duplicate_hashes()
        if "_KeysRepeat" not in f"{type(exc).__name__} {exc!r}" and not repeated.len():
            raise
        log(f"{uri}: {repeated.len()} keys repeat; second pass keeps one row each")
        return write(repeated)
    finally:
        split.hashes.close()


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
            invalid = load_tsv_one_commit(
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


def _extract(zip_path: Path, folder: Path) -> dict[str, Path]:
    """Stream the CSV members out of the zip: ``{"ratings.csv": path, ...}``."""
    found: dict[str, Path] = {}
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            name = Path(info.filename).name
            if name in WANTED_MEMBERS and not info.is_dir():  # ml-25m's genome files: skipped
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
        for spec in MOVIELENS_TABLES:
            needs_tags = spec.table == "movielens_tags" and "movielens_tag_counts" in todo
            if spec.table not in todo and not needs_tags:
                continue
            path = members.get(spec.member)
            if path is None:
                raise FileNotFoundError(f"{state.key} has no {spec.member}")
            source_file = f"{state.key}#{spec.member}"
            uri = lake.table_uri("silver", spec.table)
            raw = pl.scan_csv(path, **MOVIELENS_CSV_OPTIONS)
            if spec.table in todo:
                log(f"{spec.table}: streaming {spec.member}")
                bad = load_movielens_member(lake, uri, path, spec, source_file,
                                            state.version_tag, log)
                quarantined = write_quarantine(lake, bad, source_file)
                outcomes.append(SilverOutcome(spec.table, uri, True, state.key, quarantined))
            if needs_tags:
                counts_uri = lake.table_uri("silver", "movielens_tag_counts")
                log("movielens_tag_counts: counting tags")
                write_snapshot_table(lake, counts_uri, movielens_tag_counts(raw),
                                     state.version_tag)
                outcomes.append(SilverOutcome("movielens_tag_counts", counts_uri, True,
                                              state.key))
    return outcomes


def load_movielens_member(lake: Lake, uri: str, path: Path, spec: MovieLensTable,
                          source_file: str, version_tag: str, log: Log = _noop) -> pl.DataFrame:
    """One MovieLens CSV to its table; returns its quarantine rows. Ratings (25M rows in ml-25m)
    take the one-pass streaming load; the small files the plain transform."""
    if spec.table == "movielens_ratings":
        split = StreamSplit(spec.checks, RATINGS_COLUMNS, RATINGS_KEY, ("userId", "movieId"),
                            exact_key=pl.col("user_id").cast(pl.Int64) * (1 << 32)
                            + pl.col("movie_id").cast(pl.Int64))
        load_csv_one_pass(lake, uri, path, MOVIELENS_CSV_OPTIONS, split, latest_rating,
                          version_tag, log)
        return _quarantine_frame(split, [], source_file=source_file, source="movielens",
                                 table=spec.table, separator=",", null_text="")
    write_snapshot_table(lake, uri, spec.transform(pl.scan_csv(path, **MOVIELENS_CSV_OPTIONS)),
                         version_tag)
    return quarantine_rows(pl.scan_csv(path, row_index_name="_index", **MOVIELENS_CSV_OPTIONS),
                           spec.checks, source_file=source_file, source="movielens",
                           table=spec.table, separator=",", null_text="").collect()
