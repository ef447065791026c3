"""Shared fixtures: a fresh lake per test (local folder or moto's S3 server), free ports."""

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from lakehouse.lake.location import Lake

FIXTURES = Path(__file__).parent / "fixtures"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lake:
    """A fresh local lake; LAKEHOUSE_ROOT and LAKEHOUSE_DUCKDB_PATH point at it."""
    root = tmp_path / "lake"
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(root))
    monkeypatch.setenv("LAKEHOUSE_DUCKDB_PATH", str(tmp_path / "gold.duckdb"))
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.delenv("TELEGRAM_CHAT_IDS", raising=False)
    return Lake.from_env()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's standalone S3 server as its own process (delta-rs can hang in-process)."""
    port = free_port()
    moto = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def s3_lake(moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lake:
    """A lake in a fresh bucket of the moto server, with the usual AWS variables set."""
    import boto3

    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    env = {"AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1").create_bucket(
        Bucket=bucket)
    monkeypatch.setenv("LAKEHOUSE_ROOT", f"s3://{bucket}/lakehouse")
    monkeypatch.setenv("LAKEHOUSE_DUCKDB_PATH", str(tmp_path / "gold.duckdb"))
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    return Lake.from_env()


@pytest.fixture(autouse=True)
def _quiet_dagster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_TELEMETRY_DISABLED", "1")


@pytest.fixture(autouse=True)
def _downloads_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Partial downloads (kept across runs by design) go to the test's folder, not the repo's."""
    monkeypatch.setenv("LAKEHOUSE_DOWNLOAD_DIR", str(tmp_path / "downloads"))
