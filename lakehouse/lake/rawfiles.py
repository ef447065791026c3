"""Reading landed raw files back, the same way for every source: which keys there are, when each
was landed, and the lines of an NDJSON file.

No Dagster here: the loads, the sensors (``lakehouse.defs.raw_files``), tests and benchmarks
share these functions.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, BinaryIO

import polars as pl

from lakehouse.lake.location import Lake, day_of_raw_key
from lakehouse.lake.segments import parse_landing_stamp
from lakehouse.lake.stagetimes import StageTimes

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class BronzeLoad:
    """What one load of raw files into bronze and quarantine did, the same counters for every
    source (the run's metadata, and the records and set-aside counts the bronze file-accounting
    check compares with the tables). ``set_aside``: records left out on purpose (Telegram's chat
    allow-list), in neither table."""

    files: int = 0
    records: int = 0
    bronze_rows: int = 0
    quarantined: int = 0
    set_aside: int = 0
    dates: set[date] = field(default_factory=set)  # days of the bronze rows (partitioned bronze)
    preview: pl.DataFrame = field(default_factory=pl.DataFrame)  # a few bronze rows for the UI
    stages: StageTimes = field(default_factory=StageTimes)  # where the load's time went

    def totals(self) -> dict[str, Any]:
        return {"files": self.files, "records": self.records, "bronze_rows": self.bronze_rows,
                "quarantined": self.quarantined}


def landed_at(key: str) -> datetime:
    """When a raw file was landed: the UTC stamp its name starts with, else midnight of the
    key's ``YYYY/MM/DD`` day (a file landed by hand keeps a meaningful day), else the epoch."""
    stamp = parse_landing_stamp(key.rsplit("/", 1)[-1])
    if stamp:
        return stamp
    day = day_of_raw_key(key)
    return datetime(day.year, day.month, day.day, tzinfo=UTC) if day else EPOCH


# Polars' CSV reader decompresses what starts like gzip, zlib or zstd: such bytes are not read
# by it (a file starting with ``x\x01`` was taken for zlib and its lines lost).
_COMPRESSION_MAGIC = (b"\x1f\x8b", b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda",
                      b"\x28\xb5\x2f\xfd")


def ndjson_lines(data: bytes, column: str = "record") -> pl.DataFrame:
    """(``_record_index`` Int64, ``column`` String): the non-blank lines of an NDJSON file, each
    numbered by its line (from 0), with a trailing ``\r`` removed.

    Polars' CSV reader, with a separator that JSON text never holds unescaped (0x1F) and no
    quoting, splits lines fastest. Bytes it cannot take as they are (not UTF-8, a line holding
    that byte, a start that looks compressed) are decoded with invalid bytes replaced and split
    on ``\n``: every line stays a record (a broken one is for the quarantine), none is lost.
    """
    frame = None
    # A line holding the separator is not always refused by the CSV reader: as the last line
    # of a file without a final newline it was read as a null and lost. One scan finds it.
    if not data.startswith(_COMPRESSION_MAGIC) and b"\x1f" not in data:
        try:
            frame = pl.read_csv(data, has_header=False, separator="\x1f", quote_char=None,
                                new_columns=[column], schema={column: pl.String},
                                raise_if_empty=False)
        except (pl.exceptions.PolarsError, OSError):
            frame = None
    if frame is None:
        text = data.decode("utf-8", errors="replace")
        frame = (pl.DataFrame({column: [text]}, schema={column: pl.String})
                 .select(pl.col(column).str.split("\n")).explode(column))
    frame = frame.with_row_index("_record_index").with_columns(
        pl.col("_record_index").cast(pl.Int64))
    # Most files have no CRLF line: the texts are rewritten only when one does.
    if frame.get_column(column).str.ends_with("\r").any():
        frame = frame.with_columns(pl.col(column).str.strip_chars_end("\r"))
    return frame.filter(pl.col(column).str.contains(r"\S"))


def ndjson_line_chunks(data: bytes | BinaryIO, max_bytes: int,
                       column: str = "record") -> Iterator[pl.DataFrame]:
    """``ndjson_lines`` of ``data`` (the bytes, or a stream to read them from: a raw file read
    a block at a time, never whole) in consecutive frames of whole lines, about ``max_bytes``
    each (a longer line is a frame of its own), numbered as in the whole file. Cut only after
    a ``\n``, which no UTF-8 sequence holds, so every piece is read as the whole file would be."""
    first_line = 0
    for piece in _line_pieces(data, max(max_bytes, 1)):
        yield ndjson_lines(piece, column).with_columns(pl.col("_record_index") + first_line)
        first_line += piece.count(b"\n")


def _line_pieces(data: bytes | BinaryIO, max_bytes: int) -> Iterator[bytes]:
    if isinstance(data, bytes):
        start = 0
        while start < len(data):
            cut = data.find(b"\n", min(start + max_bytes, len(data)) - 1)
            end = len(data) if cut < 0 else cut + 1
            yield data[start:end]
            start = end
        return
    rest = b""
    while block := data.read(max_bytes):
        cut = block.rfind(b"\n")
        if cut < 0:  # no line ends in this block: it continues in the next
            rest += block
            continue
        # One copy of the block's whole lines behind the last block's unended line (a slice
        # and then a concatenation copied each 8 MiB piece twice); a block ending on a line
        # end after none is yielded as it was read.
        yield (block if not rest and cut == len(block) - 1
               else b"".join((rest, memoryview(block)[:cut + 1])))
        rest = block[cut + 1:]
    if rest:
        yield rest


def _days(start: date, end: date) -> Iterator[date]:
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


def list_raw_keys(lake: Lake, prefixes: Iterable[str], since: date | None = None,
                  today: date | None = None) -> list[str]:
    """Raw keys below ``prefixes``, sorted. With ``since``, only the day folders from ``since``
    to tomorrow (a landing clock slightly ahead) are listed: a cost that follows the recent
    days, not the history of the landing zone."""
    if since is None:
        return sorted(k for prefix in prefixes for k in lake.list_keys(prefix))
    end = (today or datetime.now(UTC).date()) + timedelta(days=1)
    return sorted(k for prefix in prefixes for day in _days(since, end)
                  for k in lake.list_keys(f"{prefix.rstrip('/')}/{day:%Y/%m/%d}"))


def chunks_by_size(lake: Lake, keys: list[str], max_bytes: int,
                   max_files: int) -> Iterator[list[str]]:
    """``keys`` in consecutive chunks of at most ``max_bytes`` of raw input (a file bigger than
    that is a chunk of its own) and ``max_files`` files: one chunk is one bounded commit."""
    pending: list[str] = []
    size = 0
    for key in keys:
        pending.append(key)
        size += lake.size(key)
        if size >= max_bytes or len(pending) >= max_files:
            yield pending
            pending, size = [], 0
    if pending:
        yield pending
