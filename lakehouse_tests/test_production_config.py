"""The production configuration as users meet it: the instance config with only AWS_REGION set
(what ECS tasks get), and a LAKEHOUSE_ROOT naming a bucket that does not exist (moto's server)."""

from pathlib import Path

import dagster as dg
import pytest
import yaml

from lakehouse.cli import main
from lakehouse.lake.location import Lake, LakeError

ROOT = Path(__file__).resolve().parents[1]
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def test_the_production_launcher_takes_its_region_from_aws_region(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The repo's production config; storage is left to the default (the Postgres part is
    # covered by test_postgres_instance), the launcher is the one the daemon loads.
    config = yaml.safe_load((ROOT / "deploy/dagster-production.yaml").read_text())
    config.pop("storage")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "placeholder")
    monkeypatch.delenv("AWS_DEFAULT_REGION")  # restored (unset) after the test
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        launcher = instance.run_launcher
        assert type(launcher).__mro__[1].__module__.startswith("dagster_aws.ecs")
        assert launcher.ecs.meta.region_name == "eu-west-1"
        assert launcher.logs.meta.region_name == "eu-west-1"


@pytest.fixture
def missing_bucket(moto_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The usual AWS variables against moto, and a LAKEHOUSE_ROOT whose bucket was never made."""
    for key, value in {"AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
                       "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1",
                       "AWS_ALLOW_HTTP": "true"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LAKEHOUSE_ROOT", "s3://missing-bucket/lakehouse")
    monkeypatch.setenv("LAKEHOUSE_DUCKDB_PATH", str(tmp_path / "gold.duckdb"))
    return "missing-bucket"


def test_a_missing_bucket_is_one_clear_line_at_the_lakes_first_access(missing_bucket: str) -> None:
    lake = Lake.from_env()
    with pytest.raises(LakeError) as raised:
        lake.list_keys("raw/telegram")
    message = str(raised.value)
    assert f"bucket '{missing_bucket}' does not exist" in message
    assert "\n" not in message and SECRET not in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    with pytest.raises(LakeError, match=missing_bucket):
        lake.write_bytes("raw/x.json", b"{}")


def test_lakehouse_sql_says_the_bucket_is_missing_in_one_line(
        missing_bucket: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "select count(*) from silver.tmdb_movies"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("error: ") and f"'{missing_bucket}' does not exist" in err
    assert SECRET not in err


def test_an_existing_bucket_is_used_as_before(s3_lake: Lake) -> None:
    s3_lake.write_bytes("raw/x.json", b"{}")
    assert s3_lake.list_keys("raw") == ["raw/x.json"]
