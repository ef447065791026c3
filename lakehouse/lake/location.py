"""Where the lake lives: a local folder or an S3 prefix, chosen by ``LAKEHOUSE_ROOT``.

Keys are always relative and use forward slashes (``raw/telegram/getupdates/...``,
``silver/telegram_messages``), so the same code and the same paths work on both backends.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs

from lakehouse.secrets import SECRET_OPTION_KEYS, redact_options, register

DEFAULT_ROOT = "data/lake"
COPY_CHUNK = 8 << 20
LAYERS = ("raw", "bronze", "silver", "gold", "quarantine")


def _aws_env() -> dict[str, str]:
    """The usual AWS variables, as delta-rs storage options."""
    names = {
        "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN": "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL": "AWS_ENDPOINT_URL",
        "AWS_REGION": "AWS_REGION",
        "AWS_ALLOW_HTTP": "AWS_ALLOW_HTTP",
    }
    options = {key: os.environ[env] for env, key in names.items() if os.environ.get(env)}
    if "AWS_REGION" not in options and os.environ.get("AWS_DEFAULT_REGION"):
        options["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"]
    endpoint = options.get("AWS_ENDPOINT_URL", "")
    if endpoint.startswith("http://"):
        options.setdefault("AWS_ALLOW_HTTP", "true")
    return options


def raw_prefix(asset_key: Sequence[str], *within: str) -> str:
    """Where a raw asset's files land: its asset key's path, ``raw/<source>/<spec>``, so the key
    is the only name; ``within`` names a folder of an asset that lands several files (a release,
    an endpoint, a dropped file's name)."""
    if len(asset_key) != 3 or asset_key[0] != "raw":
        raise ValueError(f"not a raw asset key (raw, source, spec): {tuple(asset_key)!r}")
    return "/".join([*asset_key, *within])


def raw_key(prefix: str, day: date, filename: str) -> str:
    """The landing-zone key of one raw file: ``<raw_prefix>/YYYY/MM/DD/<file>``."""
    return f"{prefix}/{day:%Y/%m/%d}/{filename}"


def day_of_raw_key(key: str) -> date | None:
    """The landing day encoded in a raw key, or None when the key has no ``YYYY/MM/DD`` part."""
    parts = key.split("/")
    for i in range(len(parts) - 3):
        y, m, d = parts[i : i + 3]
        if len(y) == 4 and y.isdigit() and m.isdigit() and d.isdigit():
            try:
                return date(int(y), int(m), int(d))
            except ValueError:
                continue
    return None


class LakeError(RuntimeError):
    """The lake cannot be used at all (e.g. its bucket does not exist): one line, no secret."""


@dataclass(frozen=True)
class Lake:
    """One lake root. ``root`` is an absolute local path or ``s3://bucket/prefix``.

    The credentials among ``storage_options`` are secrets: registered for redaction and never
    shown by ``repr``/``str``.
    """

    root: str
    storage_options: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        register(*(v for k, v in self.storage_options.items() if k in SECRET_OPTION_KEYS))

    def __repr__(self) -> str:
        return f"Lake(root={self.root!r}, storage_options={redact_options(self.storage_options)!r})"

    @classmethod
    def from_env(cls, root: str | None = None) -> Lake:
        root = root or os.environ.get("LAKEHOUSE_ROOT") or DEFAULT_ROOT
        if root.startswith("s3://"):
            return cls(root.rstrip("/"), _aws_env())
        return cls(str(Path(root).expanduser().resolve()))

    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3://")

    def uri(self, key: str) -> str:
        """The full URI (or local path) of a key."""
        return f"{self.root}/{key}"

    def table_uri(self, layer: str, table: str) -> str:
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}; expected one of {LAYERS}")
        return self.uri(f"{layer}/{table}")

    # -- files -------------------------------------------------------------------------------

    @cached_property
    def _fs(self) -> pafs.FileSystem:
        if not self.is_s3:
            return pafs.LocalFileSystem()
        opts = self.storage_options
        endpoint = opts.get("AWS_ENDPOINT_URL")
        kwargs: dict = {
            "access_key": opts.get("AWS_ACCESS_KEY_ID"),
            "secret_key": opts.get("AWS_SECRET_ACCESS_KEY"),
            "session_token": opts.get("AWS_SESSION_TOKEN"),
            "region": opts.get("AWS_REGION", "us-east-1"),
        }
        if endpoint:
            parsed = urlparse(endpoint)
            kwargs["endpoint_override"] = parsed.netloc
            kwargs["scheme"] = parsed.scheme or "https"
        fs = pafs.S3FileSystem(**{k: v for k, v in kwargs.items() if v is not None})
        self._check_bucket(fs)
        return fs

    def _check_bucket(self, fs: pafs.FileSystem) -> None:
        """Fail the first access with one clear line when the bucket is missing or unreachable
        (instead of empty listings, or an object-store trace at the first write)."""
        bucket = self.root[len("s3://"):].split("/", 1)[0]
        try:
            found = fs.get_file_info(bucket).type != pafs.FileType.NotFound
        except OSError as exc:
            reason = next((line for line in str(exc).splitlines() if line.strip()), "")
            for secret in (self.storage_options.get("AWS_SECRET_ACCESS_KEY"),
                           self.storage_options.get("AWS_SESSION_TOKEN")):
                if secret:
                    reason = reason.replace(secret, "[REDACTED]")
            raise LakeError(f"cannot reach the lake's S3 bucket {bucket!r} "
                            f"(LAKEHOUSE_ROOT={self.root}): {reason}") from None
        if not found:
            raise LakeError(f"the lake's S3 bucket {bucket!r} does not exist "
                            f"(LAKEHOUSE_ROOT={self.root}): create it, or point LAKEHOUSE_ROOT "
                            "at an existing bucket") from None

    def _path(self, key: str) -> str:
        full = self.uri(key)
        return full[len("s3://") :] if self.is_s3 else full

    def write_bytes(self, key: str, data: bytes) -> str:
        """Store ``data`` under ``key`` atomically: readers see all of it or nothing."""
        if self.is_s3:
            with self._fs.open_output_stream(self._path(key)) as out:
                out.write(data)
            return self.uri(key)
        path = Path(self._path(key))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        return str(path)

    def put_file(self, key: str, local_path: Path) -> str:
        """Copy a local file into the lake under ``key``, streamed (big dumps never sit in
        memory), atomic and fsynced on a local lake, as ``write_bytes``."""
        if self.is_s3:
            with open(local_path, "rb") as src, self._fs.open_output_stream(self._path(key)) as out:
                shutil.copyfileobj(src, out, COPY_CHUNK)
            return self.uri(key)
        dest = Path(self._path(key))
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        with open(local_path, "rb") as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, COPY_CHUNK)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
        return str(dest)

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        """A local path of a lake file: the file itself on a local lake, a streamed temporary
        copy on S3 (for readers that need a seekable file: gzip, zip, CSV scanners)."""
        if not self.is_s3:
            yield Path(self._path(key))
            return
        with tempfile.TemporaryDirectory(prefix="lakehouse-") as tmp:
            dest = Path(tmp) / Path(key).name
            with self._fs.open_input_stream(self._path(key)) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, COPY_CHUNK)
            yield dest

    def read_bytes(self, key: str) -> bytes:
        """The object's bytes; decompressed when its name says so (``.gz``, ``.zst``, ...)."""
        path = self._path(key)
        try:
            pa.Codec.detect(path)
        except (TypeError, ValueError):  # not a compressed name
            # A random-access file reads its known size into one buffer; a stream grows its
            # buffer as it reads, then copies it into bytes: a 128 MiB stream batch raised the
            # process's peak memory by 256 MiB that way, by 128 MiB this way.
            with self._fs.open_input_file(path) as src:
                return src.read()
        with self._fs.open_input_stream(path) as src:
            return src.read()

    @contextmanager
    def open_input(self, key: str) -> Iterator[pa.NativeFile]:
        """The object as a stream to read a bounded block at a time (``read(n)``), decompressed
        when its name says so, as ``read_bytes``: a big raw file is never whole in memory."""
        with self._fs.open_input_stream(self._path(key)) as src:
            yield src

    @contextmanager
    def open_file(self, uri: str) -> Iterator[pa.NativeFile]:
        """A random-access file by its full URI in the lake (a Delta table's data file, as
        ``DeltaTable.file_uris`` names it), for readers that seek, such as Parquet's."""
        with self._fs.open_input_file(uri.removeprefix("s3://")) as src:
            yield src

    def size(self, key: str) -> int:
        return self._fs.get_file_info(self._path(key)).size or 0

    def exists(self, key: str) -> bool:
        return self._fs.get_file_info(self._path(key)).type == pafs.FileType.File

    def is_dir(self, key: str) -> bool:
        return self._fs.get_file_info(self._path(key)).type == pafs.FileType.Directory

    def list_dirs(self, prefix: str) -> list[str]:
        """Names of the folders directly below ``prefix``, sorted (hidden ones skipped)."""
        selector = pafs.FileSelector(self._path(prefix.rstrip("/")), recursive=False,
                                     allow_not_found=True)
        return sorted(info.base_name for info in self._fs.get_file_info(selector)
                      if info.type == pafs.FileType.Directory
                      and not info.base_name.startswith("."))

    def delta_tables(self, layer: str) -> list[str]:
        """The Delta tables of a layer: folders ``<layer>/<table>`` holding a ``_delta_log``."""
        return [t for t in self.list_dirs(layer) if self.is_dir(f"{layer}/{t}/_delta_log")]

    def list_keys(self, prefix: str) -> list[str]:
        """All file keys below ``prefix``, sorted; hidden and temporary files are skipped."""
        selector = pafs.FileSelector(self._path(prefix.rstrip("/")), recursive=True,
                                     allow_not_found=True)
        base = self._path("")
        keys = [
            info.path[len(base):]
            for info in self._fs.get_file_info(selector)
            if info.type == pafs.FileType.File and not info.base_name.startswith(".")
        ]
        return sorted(keys)
