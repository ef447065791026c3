"""Fixtures of the UI tests: a headless Chromium session (skipped when Chromium is absent)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from lakehouse_tests.ui.browser import Browser


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    session = Browser(tmp_path / "chromium")
    try:
        yield session
    finally:
        session.close()
