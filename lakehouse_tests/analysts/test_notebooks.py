"""The notebooks in notebooks/ run clean on the demo lake, local and on S3 (moto), through nbclient.

One demo lake is built per session (``python -m lakehouse.demo`` into a temporary folder, about
half a minute); the S3 run uploads that same lake to a moto bucket rather than building it twice.
"""

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import nbformat
import pytest
from nbclient import NotebookClient

from lakehouse.lake.location import Lake

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


def test_every_domain_has_a_notebook_committed_without_outputs() -> None:
    assert [p.stem for p in NOTEBOOKS] == ["action_adventure", "telegram_activity", "tweet_sentiment"]
    for path in NOTEBOOKS:
        notebook = json.loads(path.read_text())
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, (
                    f"{path.name} has outputs: clear them before committing")
        source = "".join("".join(c["source"]) for c in notebook["cells"])
        assert "from lakehouse import catalog" in source
        assert "version=" in source and "LAKEHOUSE_ROOT=s3://" in source


@pytest.fixture(scope="session")
def demo_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lake `make demo` builds, in a temporary folder."""
    folder = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}  # an ephemeral instance
    env.update(LAKEHOUSE_ROOT=str(folder / "lake"), LAKEHOUSE_DUCKDB_PATH=str(folder / "gold.duckdb"),
               LAKEHOUSE_DEMO_LOG=str(folder / "demo.log"), DAGSTER_TELEMETRY_DISABLED="1")
    env.pop("TELEGRAM_BOT_TOKEN", None)
    env.pop("TWITTER_BEARER_TOKEN", None)
    done = subprocess.run([sys.executable, "-m", "lakehouse.demo"], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return folder / "lake"


def execute(path: Path) -> nbformat.NotebookNode:
    """Run a notebook the way `make notebooks` does (nbclient, the python3 kernel of this venv)."""
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS_DIR)}}).execute()
    return notebook


def outputs(notebook: nbformat.NotebookNode) -> Iterator[dict]:
    for cell in notebook.cells:
        yield from cell.get("outputs", [])


def check_ran_clean(notebook: nbformat.NotebookNode, root: str, name: str, figures: Path) -> str:
    printed = "".join(o.get("text", "") for o in outputs(notebook) if o["output_type"] == "stream"
                      and o.get("name") == "stdout")
    assert f"lake: {root}" in printed, printed
    assert not [o for o in outputs(notebook) if o["output_type"] == "error"]
    images = [o["data"]["image/png"] for o in outputs(notebook) if "image/png" in o.get("data", {})]
    assert images, f"{name} drew no chart"
    figures.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images, 1):  # kept for a look when a chart goes wrong
        (figures / f"{name}_{i}.png").write_bytes(base64.b64decode(image))
    return printed


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_clean_on_the_demo_lake(path: Path, demo_lake: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(demo_lake))
    notebook = execute(path)
    printed = check_ran_clean(notebook, str(demo_lake), path.stem, tmp_path / "figures")
    texts = "".join(o.get("data", {}).get("text/plain", "") for o in outputs(notebook))
    if path.stem == "telegram_activity":
        assert "Lakehouse Movie Club" not in texts or "Bruno" in texts  # the top sender table
        assert "messages" in printed
    if path.stem == "tweet_sentiment":
        assert "Negative" in texts and "Positive" in texts
    if path.stem == "action_adventure":
        assert "versions; version" in printed


def upload(folder: Path, lake: Lake) -> None:
    bucket, _, prefix = lake.root[len("s3://"):].partition("/")
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
    for path in folder.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(folder).as_posix()}")


def test_notebooks_run_clean_against_an_s3_lake(demo_lake: Path, s3_lake: Lake, tmp_path: Path) -> None:
    upload(demo_lake, s3_lake)
    for path in NOTEBOOKS:
        check_ran_clean(execute(path), s3_lake.root, path.stem, tmp_path / "figures")


def test_every_table_of_the_demo_lake_describes_itself(demo_lake: Path) -> None:
    """Each Delta table `make demo` writes carries its name, description and a comment on every
    column, from the dbt YAML: a new table or column without a description fails here."""
    from deltalake import DeltaTable

    from lakehouse.lake import table_docs
    from lakehouse.sqlshell import discover_tables

    undescribed = {}
    for name, uri in discover_tables(Lake.from_env(str(demo_lake))).items():
        table = DeltaTable(uri)
        comments = table_docs.column_comments(table)
        missing = [f.name for f in table.schema().fields if f.name not in comments]
        if table.metadata().name != name or not table.metadata().description or missing:
            undescribed[name] = missing or "no name or description"
    assert not undescribed, (
        f"describe these in dbt_project/models/<domain>/_<domain>__sources.yml: {undescribed}")
