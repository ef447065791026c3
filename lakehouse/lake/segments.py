"""Durable NDJSON segments: many small records landed as few files, as a Firehose does.

A record (one received body, bytes unchanged) is appended to the open segment of a local spool
folder and fsynced before ``append`` / ``append_many`` returns, so a caller may acknowledge it at
once; ``append_many`` lands a whole group with one write and one fsync (group commit).

A segment's life in the spool folder:

- ``<name>.open``: being appended. Its creation is made durable by fsyncing the folder.
- ``<name>.ready``: closed by size (``max_bytes``) or age (``max_age``), renamed (folder fsynced)
  and waiting for upload. Closing is local and cheap, so it never waits on the lake.
- uploaded to ``key_for(name, opened_at)`` and then unlinked. A crash between the two uploads
  the same bytes to the same key again, which is harmless.

The sealer (a thread, started by ``start_sealer``) closes old segments and uploads ready ones.
It never dies: a failed upload (a lake folder it cannot write, an S3 error) is logged and
retried with exponential backoff, forever; ``health()`` says why and how many records are
still only in the spool. ``close(timeout)`` closes the open segment and waits, bounded, for the
uploads, then logs what it left in the spool; the next writer on that folder uploads it (and
first turns a crashed writer's ``.open`` segment into a ready one, minus a torn last line,
which was never acknowledged).

Names are ``<opened at>-<writer id>-<seq>.ndjson``: the writer id is random per writer, so two
replicas or two stream consumers (each with its own spool folder) never write the same key.
One spool folder belongs to one writer at a time (an exclusive ``flock`` on ``.lock``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lakehouse.lake.location import Lake

OPEN_SUFFIX = ".open"
READY_SUFFIX = ".ready"
LOCK_NAME = ".lock"
log = logging.getLogger(__name__)


def landing_stamp(moment: datetime) -> str:
    """A sortable UTC timestamp for file names: ``20261123T093000123456Z``."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def parse_landing_stamp(name: str) -> datetime | None:
    try:
        return datetime.strptime(name[:22], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def fsync_dir(folder: Path | str) -> None:
    """Make a creation, rename or unlink inside ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SpoolInUseError(RuntimeError):
    pass


@dataclass(frozen=True)
class SpoolHealth:
    ok: bool
    unsealed_records: int
    unsealed_segments: int
    reason: str | None
    spool_dir: str


class SegmentWriter:
    """Appends records to spool segments and seals them to ``key_for(segment_name, opened_at)``."""

    def __init__(self, lake: Lake, spool_dir: Path | str, key_for: Callable[[str, datetime], str],
                 *, max_bytes: int = 64 * 1024 * 1024, max_age: float = 300.0,
                 suffix: str = ".ndjson", clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 retry_initial: float = 0.5, retry_max: float = 10.0):
        self.lake = lake
        self.spool_dir = Path(spool_dir)
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.key_for = key_for
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.suffix = suffix
        self.clock = clock
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.writer_id = uuid.uuid4().hex[:12]
        self.sealed: list[str] = []
        self.fsyncs = 0  # appends made durable; records / fsyncs is the group-commit factor
        self._lock_file = _lock_spool(self.spool_dir)
        self._lock = threading.Lock()  # the open segment
        self._upload_lock = threading.Lock()  # one uploader at a time (thread or close)
        self._fd: int | None = None  # the open segment (unbuffered: no bytes hide in a buffer)
        self._size = 0
        self._path: Path | None = None
        self._opened_monotonic = 0.0
        self._open_records = 0
        self._seq = 0
        self._ready: dict[Path, int] = {}  # ready segment -> its record count
        self._close_error: str | None = None
        self._upload_error: str | None = None
        self._deadline: float | None = None
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self.recover()

    # -- recovery -----------------------------------------------------------------------------

    def recover(self) -> int:
        """Queue every segment a previous writer left in the spool; returns their record count.

        A ``.open`` one's torn last line (a write cut by a crash) was never acknowledged and is
        cut off. The uploads happen in the sealer (or ``close``), not here, so a writer starts
        even while the lake is unreachable.
        """
        changed = False
        for path in sorted(self.spool_dir.glob(f"*{self.suffix}{READY_SUFFIX}")):
            _truncate_torn_tail(path)  # only after a failed write, which was not acknowledged
            if path.stat().st_size == 0:
                path.unlink()
                changed = True
        for path in sorted(self.spool_dir.glob(f"*{self.suffix}{OPEN_SUFFIX}")):
            _truncate_torn_tail(path)
            if path.stat().st_size == 0:
                path.unlink()
            else:
                path.rename(path.with_name(path.name[: -len(OPEN_SUFFIX)] + READY_SUFFIX))
            changed = True
        if changed:
            fsync_dir(self.spool_dir)
        found = 0
        for path in sorted(self.spool_dir.glob(f"*{self.suffix}{READY_SUFFIX}")):
            if path not in self._ready:
                self._ready[path] = _count_lines(path)
                found += self._ready[path]
        if found:
            log.info("spool %s: %d record(s) in %d segment(s) from an earlier run, to upload",
                     self.spool_dir, found, len(self._ready))
        return found

    # -- writing ------------------------------------------------------------------------------

    def append(self, record: bytes) -> None:
        """Land one record durably (fsync) before returning."""
        self.append_many([record])

    def append_many(self, records: Iterable[bytes]) -> None:
        """Land a group of records with one write and one fsync before returning.

        Closing a full segment after the fsync is local; if even that fails (the spool folder
        went read-only), the records are still durable, so this does not raise: the segment stays
        open, ``health()`` reports it and the sealer tries again.
        """
        lines = []
        for record in records:
            if b"\n" in record:
                raise ValueError("a segment record cannot contain a newline byte")
            lines.append(record)
        if not lines:
            return
        data = memoryview(b"\n".join(lines) + b"\n")
        total = len(data)
        with self._lock:
            if self._fd is None:
                self._open()
            assert self._fd is not None
            try:
                while data:
                    data = data[os.write(self._fd, data):]
                os.fsync(self._fd)
            except OSError:
                self._drop_failed_write()
                raise
            self.fsyncs += 1
            self._size += total
            self._open_records += len(lines)
            if self._size >= self.max_bytes:
                self._close_current_safely()

    def seal_if_old(self) -> None:
        """Close the open segment once it is ``max_age`` old, or full and not yet closed (that
        failed before); the upload follows in the sealer."""
        with self._lock:
            if self._fd is not None and (
                    time.monotonic() - self._opened_monotonic >= self.max_age
                    or self._size >= self.max_bytes):
                self._close_current_safely()

    # -- the sealer ---------------------------------------------------------------------------

    def start_sealer(self, every: float = 1.0,
                     stop: threading.Event | None = None) -> threading.Thread:
        """Start the sealer thread (once): it closes old segments and uploads ready ones until
        ``close`` (which it then helps finish) or until ``stop`` is set."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._sealer_loop, args=(every, stop),
                                            name="segment-sealer", daemon=True)
            self._thread.start()
        return self._thread

    def run_age_sealer(self, stop: threading.Event, every: float = 1.0) -> threading.Thread:
        """``start_sealer`` ending when ``stop`` is set; ``close`` then finishes the uploads."""
        return self.start_sealer(every, stop)

    def _sealer_loop(self, every: float, stop: threading.Event | None) -> None:
        delay = self.retry_initial
        next_try = 0.0
        while not self._closing.is_set() and not (stop is not None and stop.is_set()):
            self._wake.wait(every)
            self._wake.clear()
            if self._closing.is_set():
                break
            try:
                self.seal_if_old()
                if self._ready and time.monotonic() >= next_try:
                    if self.upload_ready():
                        delay = self.retry_initial
                    else:
                        next_try = time.monotonic() + delay
                        delay = min(delay * 2, self.retry_max)
            except Exception as exc:  # never let the sealer die: report, back off, go on
                self._upload_error = f"sealer error ({_kind(exc)})"
                log.exception("spool %s: sealer error; retrying", self.spool_dir)
                next_try = time.monotonic() + delay
                delay = min(delay * 2, self.retry_max)
        if self._closing.is_set():
            self._drain(self._deadline)

    def upload_ready(self, timeout: float | None = None) -> bool:
        """Upload every ready segment, oldest first. False when one fails (``health()`` then
        says why) or when another upload still runs after ``timeout`` seconds."""
        if not self._upload_lock.acquire(timeout=-1 if timeout is None else max(timeout, 0)):
            return False
        try:
            with self._lock:
                pending = sorted(self._ready)
            for path in pending:
                try:
                    self._upload(path)
                except Exception as exc:
                    self._upload_error = (f"upload of {path.name} failed ({_kind(exc)}); "
                                          "retrying with backoff")
                    log.warning("spool %s: %s", self.spool_dir, self._upload_error)
                    return False
            self._upload_error = None
            return True
        finally:
            self._upload_lock.release()

    def health(self) -> SpoolHealth:
        """Whether the writer is keeping up, and how many records are only in the spool.

        Lock-free (a dict copy is atomic under the GIL): a health probe never waits for an
        fsync, so it never blocks the server's event loop on a slow disk.
        """
        ready = dict(self._ready)
        open_records = self._open_records
        records = open_records + sum(ready.values())
        segments = len(ready) + (1 if open_records else 0)
        reasons = [r for r in (self._close_error, self._upload_error) if r]
        return SpoolHealth(not reasons, records, segments, "; ".join(reasons) or None,
                           str(self.spool_dir))

    def close(self, timeout: float | None = 30.0) -> SpoolHealth:
        """Close the open segment and upload every ready one, retrying with backoff for up to
        ``timeout`` seconds (``None``: until done), and stop the sealer. Logs what is left."""
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._closing.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        still_busy = thread is not None and thread.is_alive()
        if not still_busy:
            self._drain(self._deadline)
        left = self.health()
        if left.unsealed_records:
            log.warning("stopping with %d acknowledged record(s) in %d segment(s) still only in "
                        "the spool folder %s (%s); the next start on this folder uploads them",
                        left.unsealed_records, left.unsealed_segments, self.spool_dir,
                        left.reason or "time is up")
        elif self.sealed:
            log.info("spool %s: everything uploaded", self.spool_dir)
        if not still_busy:
            self._lock_file.close()
        return left

    def _drain(self, deadline: float | None) -> None:
        """Close the open segment and upload every ready one, with backoff, until ``deadline``."""
        delay = self.retry_initial
        while True:
            with self._lock:
                if self._fd is not None:
                    self._close_current_safely()
                closed = self._fd is None
            remaining = None if deadline is None else deadline - time.monotonic()
            if self.upload_ready(remaining) and closed:
                return
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            time.sleep(delay if remaining is None else min(delay, remaining))
            delay = min(delay * 2, self.retry_max)

    # -- internals ----------------------------------------------------------------------------

    def _open(self) -> None:
        opened_at = self.clock()
        self._opened_monotonic = time.monotonic()
        self._seq += 1
        name = f"{landing_stamp(opened_at)}-{self.writer_id}-{self._seq:04d}{self.suffix}"
        self._path = self.spool_dir / (name + OPEN_SUFFIX)
        self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = 0
        self._open_records = 0
        fsync_dir(self.spool_dir)

    def _close_current_safely(self) -> None:
        """Close the open segment into a ready one (caller holds ``_lock``); never raises."""
        assert self._fd is not None and self._path is not None
        ready = self._path.with_name(self._path.name[: -len(OPEN_SUFFIX)] + READY_SUFFIX)
        try:
            self._path.rename(ready)
            fsync_dir(self.spool_dir)
        except OSError as exc:
            self._close_error = f"closing segment {self._path.name} failed ({_kind(exc)})"
            log.warning("spool %s: %s; retrying", self.spool_dir, self._close_error)
            return
        os.close(self._fd)
        self._ready[ready] = self._open_records
        self._fd, self._path, self._open_records, self._size = None, None, 0, 0
        self._close_error = None
        self._wake.set()

    def _drop_failed_write(self) -> None:
        """After a failed write or fsync (disk full, I/O error): cut what it may have left, so
        the next record does not start mid-line, and move on to a fresh segment."""
        assert self._fd is not None
        try:
            os.ftruncate(self._fd, self._size)
            os.fsync(self._fd)
        except OSError:
            log.warning("spool %s: could not cut a failed write; recovery will", self.spool_dir)
        if self._open_records:
            self._close_current_safely()
        else:
            os.close(self._fd)
            assert self._path is not None
            self._path.unlink(missing_ok=True)
            self._fd, self._path, self._size = None, None, 0

    def _upload(self, path: Path) -> None:
        name = path.name[: -len(READY_SUFFIX)]
        opened_at = parse_landing_stamp(name) or self.clock()
        key = self.key_for(name, opened_at)
        self.lake.put_file(key, path)
        if not self.lake.is_s3:
            # The lake's rename must be durable before the spool's copy goes.
            fsync_dir(Path(self.lake.uri(key)).parent)
        path.unlink()
        fsync_dir(self.spool_dir)
        with self._lock:
            self._ready.pop(path, None)
        self.sealed.append(key)


def _kind(exc: BaseException) -> str:
    """An error as its type and, for a local OS error, its errno text ("Permission denied").
    Never the message itself: a storage client's may hold a signed URL or a credential."""
    if isinstance(exc, OSError) and exc.errno and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return type(exc).__name__


def _lock_spool(spool_dir: Path):  # noqa: ANN202 (an open file object)
    lock = open(spool_dir / LOCK_NAME, "a+b")  # noqa: SIM115 (held for the writer's life)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise SpoolInUseError(f"spool folder {spool_dir} is used by another running writer; "
                              "give each writer its own folder") from None
    return lock


def _count_lines(path: Path) -> int:
    count = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            count += chunk.count(b"\n")
    return count


def _truncate_torn_tail(path: Path, chunk: int = 1 << 16) -> None:
    """Cut a last line without its newline (a write the crash cut short), reading from the end."""
    with open(path, "r+b") as f:
        end = f.seek(0, os.SEEK_END)
        pos = end
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            block = f.read(pos - start)
            if pos == end and block.endswith(b"\n"):
                return
            newline = block.rfind(b"\n")
            if newline >= 0:
                f.truncate(start + newline + 1)
                os.fsync(f.fileno())
                return
            pos = start
        if end:
            f.truncate(0)
            os.fsync(f.fileno())
