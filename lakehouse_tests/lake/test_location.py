"""Raw landing prefixes come from the raw assets' keys."""

import gzip
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from lakehouse.lake.location import Lake, raw_key, raw_prefix


def test_a_raw_asset_lands_under_its_key_path() -> None:
    assert raw_prefix(("raw", "tmdb", "answers"), "movie") == "raw/tmdb/answers/movie"
    assert raw_key(raw_prefix(("raw", "telegram", "webhook")), date(2026, 11, 2), "a.ndjson") \
        == "raw/telegram/webhook/2026/11/02/a.ndjson"


@pytest.mark.parametrize("key", [("silver", "tmdb_movies"), ("raw", "tmdb"), ("bronze", "a", "b")])
def test_a_key_that_is_not_a_raw_asset_has_no_landing_prefix(key: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="not a raw asset key"):
        raw_prefix(key)


_READ_PEAK = """
import sys
from lakehouse.lake.location import Lake

def peak_mib():  # this process's own (ru_maxrss would count the parent's peak at fork)
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmHWM")) / 1024

lake = Lake.from_env(sys.argv[1])
before = peak_mib()
data = lake.read_bytes("raw/twitter/stream/batch.ndjson")
print(len(data), peak_mib() - before)
"""


def test_reading_a_raw_file_holds_it_about_once(tmp_path: Path) -> None:
    """A 128 MiB stream batch (the stream's flush size) read back is its bytes, and reading it
    raises the process's peak memory by about its size, not twice (a stream's buffer grown
    chunk by chunk, then copied into bytes)."""
    size = 128 * 2**20
    lake = Lake.from_env(str(tmp_path))
    line = b'{"data":{"id":"1","text":"' + b"x" * 1000 + b'"}}\n'
    lake.write_bytes("raw/twitter/stream/batch.ndjson", line * (size // len(line)))
    out = subprocess.run([sys.executable, "-c", _READ_PEAK, str(tmp_path)], check=True,
                         capture_output=True, text=True).stdout.split()
    assert int(out[0]) == len(line) * (size // len(line))
    assert float(out[1]) < 1.3 * size / 2**20


@pytest.mark.parametrize("where", ["local", "s3"])
def test_read_bytes_returns_what_was_written_and_decompresses_compressed_names(
        where: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    lake = request.getfixturevalue("s3_lake") if where == "s3" else Lake.from_env(str(tmp_path))
    data = bytes(range(256)) * 40_000  # 10 MiB, more than one read of a stream
    lake.write_bytes("raw/x/file.bin", data)
    assert lake.read_bytes("raw/x/file.bin") == data
    if where == "local":  # a gzip name is read decompressed, as before
        (tmp_path / "raw/x/file.txt.gz").write_bytes(gzip.compress(b"hello\n"))
        assert lake.read_bytes("raw/x/file.txt.gz") == b"hello\n"
