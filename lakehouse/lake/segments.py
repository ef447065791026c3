"""Durable NDJSON segments: many small records landed as few files, as a Firehose does.

Each record (one received body, bytes unchanged) is appended to an open segment in a local spool
folder and fsynced before ``append`` returns, so a caller may acknowledge it at once. A segment
is sealed into the lake when it reaches ``max_bytes`` or ``max_age`` seconds, on ``close``, and,
after a crash, when the next writer starts on the same spool folder. A busy day thus becomes a
few hundred files, not a million.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from lakehouse.lake.location import Lake

OPEN_SUFFIX = ".open"


def landing_stamp(moment: datetime) -> str:
    """A sortable UTC timestamp for file names: ``20261123T093000123456Z``."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def parse_landing_stamp(name: str) -> datetime | None:
    try:
        return datetime.strptime(name[:22], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None


class SegmentWriter:
    """Appends records to spool segments and seals them to ``key_for(segment_name, opened_at)``."""

    def __init__(self, lake: Lake, spool_dir: Path, key_for: Callable[[str, datetime], str], *,
                 max_bytes: int = 64 * 1024 * 1024, max_age: float = 300.0,
                 suffix: str = ".ndjson", clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.lake = lake
        self.spool_dir = Path(spool_dir)
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.key_for = key_for
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.suffix = suffix
        self.clock = clock
        self._lock = threading.Lock()
        self._file = None
        self._path: Path | None = None
        self._opened_at: datetime | None = None
        self._opened_monotonic = 0.0
        self._seq = 0
        self.sealed: list[str] = []
        self.recover()

    # -- recovery -----------------------------------------------------------------------------

    def recover(self) -> list[str]:
        """Seal segments a crashed writer left open; a torn last line was never acknowledged."""
        keys = []
        for path in sorted(self.spool_dir.glob(f"*{self.suffix}{OPEN_SUFFIX}")):
            _truncate_torn_tail(path)
            keys.append(self._seal_path(path))
        return [k for k in keys if k]

    # -- writing ------------------------------------------------------------------------------

    def append(self, record: bytes) -> None:
        """Land one record durably (fsync) before returning."""
        if b"\n" in record:
            raise ValueError("a segment record cannot contain a newline byte")
        with self._lock:
            if self._file is None:
                self._open()
            assert self._file is not None
            self._file.write(record + b"\n")
            self._file.flush()
            os.fsync(self._file.fileno())
            if self._file.tell() >= self.max_bytes:
                self._seal_current()

    def seal_if_old(self) -> None:
        with self._lock:
            if self._file is not None and time.monotonic() - self._opened_monotonic >= self.max_age:
                self._seal_current()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._seal_current()

    def run_age_sealer(self, stop: threading.Event, every: float = 1.0) -> threading.Thread:
        """A daemon thread sealing the open segment once it is ``max_age`` old."""
        def loop() -> None:
            while not stop.wait(every):
                self.seal_if_old()
        thread = threading.Thread(target=loop, name="segment-sealer", daemon=True)
        thread.start()
        return thread

    # -- internals ----------------------------------------------------------------------------

    def _open(self) -> None:
        self._opened_at = self.clock()
        self._opened_monotonic = time.monotonic()
        self._seq += 1
        name = f"{landing_stamp(self._opened_at)}-{os.getpid()}-{self._seq:04d}{self.suffix}"
        self._path = self.spool_dir / (name + OPEN_SUFFIX)
        self._file = open(self._path, "ab")  # noqa: SIM115 (kept open across appends)

    def _seal_current(self) -> None:
        assert self._file is not None and self._path is not None
        self._file.close()
        self._file = None
        self._seal_path(self._path)
        self._path = None

    def _seal_path(self, path: Path) -> str:
        name = path.name[: -len(OPEN_SUFFIX)]
        if path.stat().st_size == 0:
            path.unlink()
            return ""
        opened_at = parse_landing_stamp(name) or self.clock()
        key = self.key_for(name, opened_at)
        # Upload first, unlink after: a crash in between re-uploads the same bytes to the
        # same key, which is harmless.
        self.lake.put_file(key, path)
        path.unlink()
        self.sealed.append(key)
        return key


def _truncate_torn_tail(path: Path) -> None:
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)
            os.fsync(f.fileno())
