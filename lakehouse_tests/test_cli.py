"""The ``lakehouse`` console script ends the process itself (see ``lakehouse.cli.run``): what a
command printed still reaches its reader, and exit codes are the ones the command chose."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from lakehouse.lake.location import Lake

SCRIPT = Path(sys.executable).parent / "lakehouse"


def lakehouse(*argv: str) -> subprocess.CompletedProcess[Any]:
    # Buffered, as when a script or a pipe reads it (PYTHONUNBUFFERED would hide a lost buffer).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run([str(SCRIPT), *argv], capture_output=True, text=True, timeout=120, env=env)


def test_everything_printed_reaches_a_pipe(lake: Lake) -> None:
    # 200,000 CSV lines are far more than a pipe's buffer: none may be lost when the process ends.
    done = lakehouse("sql", "select range as n from range(200000)", "--format", "csv")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "n"
    assert len(lines) == 200_001
    assert lines[-1] == "199999"


def test_help_is_printed_whole_and_exits_0() -> None:
    done = lakehouse("--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: lakehouse")
    assert "tables" in done.stdout and done.stdout.rstrip().endswith("show this help message and exit")


def test_a_usage_error_exits_2_with_the_usage(lake: Lake) -> None:
    done = lakehouse("no-such-command")
    assert done.returncode == 2
    assert "usage: lakehouse" in done.stderr
    assert "invalid choice: 'no-such-command'" in done.stderr


def test_a_failing_command_keeps_its_exit_code(lake: Lake) -> None:
    done = lakehouse("sql", "select * from gold.nothing_here")
    assert done.returncode == 1
    assert "gold.nothing_here" in done.stderr
