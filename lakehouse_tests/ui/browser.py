"""Headless Chromium for the UI tests, driven over the W3C WebDriver protocol of chromedriver.

Debian's ``chromium`` and ``chromium-driver`` packages are enough: the few WebDriver calls the
tests need (open a page, run a script, take a screenshot) are plain HTTP, spoken with requests,
so no browser-automation package is needed. Nothing is downloaded: the flags switch off the
component updater and background networking.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Debian's /usr/bin/chromium is a shell wrapper; chromedriver is happiest with the real binary.
CHROMIUM_BINARY = Path("/usr/lib/chromium/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
         "--window-size=1280,900"]


def require_chromium() -> None:
    """Skip when Chromium is absent (CI installs it); with Chromium but no driver, fail loudly."""
    if not CHROMIUM.exists():
        pytest.skip(f"headless Chromium absent ({CHROMIUM}): apt-get install -y chromium chromium-driver "
                    "(CI installs it)")
    if not CHROMEDRIVER.exists():
        pytest.fail(f"{CHROMIUM} is installed but {CHROMEDRIVER} is not: apt-get install -y chromium-driver")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def screenshot_cli(url: str, path: Path, profile: Path, wait_ms: int = 5000) -> Path:
    """One-shot screenshot with chromium's own --screenshot (no driver)."""
    binary = CHROMIUM_BINARY if CHROMIUM_BINARY.exists() else CHROMIUM
    subprocess.run([str(binary), *FLAGS, f"--user-data-dir={profile}", f"--screenshot={path}",
                    f"--virtual-time-budget={wait_ms}", url],
                   check=True, capture_output=True, timeout=120)
    return path


class Browser:
    """One chromedriver process and one headless Chromium session."""

    def __init__(self, workdir: Path) -> None:
        require_chromium()
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self._log = open(workdir / "chromedriver.log", "wb")  # noqa: SIM115 (closed in close())
        self._driver = subprocess.Popen([str(CHROMEDRIVER), f"--port={self.port}"],
                                        stdout=self._log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"
        self.session: str | None = None
        try:
            self._wait_ready()
            binary = CHROMIUM_BINARY if CHROMIUM_BINARY.exists() else CHROMIUM
            caps = {"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": str(binary),
                                       "args": [*FLAGS, f"--user-data-dir={workdir / 'profile'}"]},
            }}}
            answer = self._call("POST", "/session", caps, timeout=120)
            self.session = answer["sessionId"]
        except BaseException:
            self.close()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.base}/status", timeout=1).json()["value"]["ready"]:
                    return
            except (requests.RequestException, ValueError, KeyError):
                pass
            time.sleep(0.1)
        raise TimeoutError("chromedriver did not start")

    def _call(self, method: str, path: str, body: dict | None = None, timeout: float = 60) -> Any:
        response = requests.request(method, self.base + path, json=body, timeout=timeout)
        value = response.json().get("value")
        if response.status_code != 200:
            raise RuntimeError(f"WebDriver {method} {path}: {value}")
        return value

    def _session_call(self, method: str, path: str, body: dict | None = None) -> Any:
        return self._call(method, f"/session/{self.session}{path}", body)

    def get(self, url: str) -> None:
        self._session_call("POST", "/url", {"url": url})

    def execute(self, script: str, *args: Any) -> Any:
        """Run ``script`` (a function body; ``arguments`` holds ``args``) in the page."""
        return self._session_call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait_for(self, script: str, predicate: Callable[[Any], bool] = bool, timeout: float = 30) -> Any:
        """Poll ``script`` until ``predicate(value)`` holds; return that value."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.execute(script)
            if predicate(value):
                return value
            time.sleep(0.2)
        raise TimeoutError(f"page never satisfied the wait; last value {value!r}")

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self._session_call("GET", "/screenshot")))
        return path

    def close(self) -> None:
        if self.session:
            with contextlib.suppress(requests.RequestException, RuntimeError):
                self._call("DELETE", f"/session/{self.session}", timeout=30)
            self.session = None
        if self._driver.poll() is None:
            self._driver.terminate()
            try:
                self._driver.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._driver.kill()
        self._log.close()
