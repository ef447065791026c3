"""The production instance shape: Dagster storage on PostgreSQL (dagster-postgres).

A private PostgreSQL 15 cluster is created in a temporary folder (initdb, pg_ctl, as the
postgres user), listening on 127.0.0.1 on a free port, and stopped by its own pid file.
"""

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from lakehouse.definitions import defs
from lakehouse.lake.location import Lake
from lakehouse_tests.conftest import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
ROOT = Path(__file__).resolve().parents[1]


def _as_postgres(*args: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    if not (PG_BIN / "initdb").exists() or os.geteuid() != 0 or not shutil.which("runuser"):
        pytest.skip("needs PostgreSQL 15 binaries and root (to run them as the postgres user)")
    folder = Path(tempfile.mkdtemp(prefix="lakehouse-pg-"))
    shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", free_port()
    _as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust")
    _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-l", str(folder / "log"),
                 "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start")
    try:
        _as_postgres(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "dagster")
        yield f"postgresql://postgres@127.0.0.1:{port}/dagster"
    finally:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def test_the_telegram_pipeline_runs_on_a_postgres_instance(
        postgres_url: str, lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The production config of the repo, connected through its own environment variables;
    # only the ECS launcher is dropped (runs execute in this process).
    port = postgres_url.rsplit(":", 1)[1].split("/")[0]
    for name, value in {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": port,
                        "DAGSTER_PG_USER": "postgres", "DAGSTER_PG_PASSWORD": "trust",
                        "DAGSTER_PG_DB": "dagster"}.items():
        monkeypatch.setenv(name, value)
    config = yaml.safe_load((ROOT / "deploy/dagster-production.yaml").read_text())
    config.pop("run_launcher")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        definitions = defs()
        for job in ("telegram_poll_job", "telegram_bronze_job"):
            assert definitions.resolve_job_def(job).execute_in_process(instance=instance).success
        assert instance.get_latest_materialization_event(
            dg.AssetKey(["bronze", "telegram_updates"])) is not None
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert len(instance.get_runs()) == 2
