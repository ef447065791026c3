"""The webhook receiver as a real process over real HTTP, killed and restarted."""

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import requests

from lakehouse.defs.telegram.assets import telegram_bronze
from lakehouse.lake.delta import scan
from lakehouse.lake.location import Lake
from lakehouse.lake.resource import LakeResource
from lakehouse.sources.telegram import TelegramResource
from lakehouse.sources.telegram_landing import WEBHOOK_PREFIX
from lakehouse_tests.conftest import FIXTURES, free_port, wait_for_http

SECRET = "webhook-secret-123"
HOOK = "/telegram/webhook"


class Receiver:
    def __init__(self, lake: Lake, spool: Path, extra_env: dict[str, str] | None = None,
                 extra_args: tuple[str, ...] = (), log: Path | None = None):
        self.lake, self.spool, self.port = lake, spool, free_port()
        self.env = {**os.environ, "LAKEHOUSE_ROOT": lake.root, "TELEGRAM_WEBHOOK_SECRET": SECRET,
                    **(extra_env or {})}
        self.extra_args, self.log = extra_args, log
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Receiver":
        output = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lakehouse.cli", "telegram", "webhook", "--port",
             str(self.port), "--spool-dir", str(self.spool), "--segment-seconds", "3600",
             *self.extra_args],
            env=self.env, stdout=output, stderr=output)
        if self.log:
            output.close()
        wait_for_http(f"{self.url}/healthz")
        return self

    def post(self, body: bytes, secret: str | None = SECRET) -> requests.Response:
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        return requests.post(self.url + HOOK, data=body, headers=headers, timeout=10)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)


@pytest.fixture
def receiver(lake: Lake, tmp_path: Path) -> Iterator[Receiver]:
    running = Receiver(lake, tmp_path / "spool").start()
    yield running
    running.stop()


def _an_update() -> bytes:
    answer = json.loads((FIXTURES / "telegram/getupdates_answer.json").read_text())
    return json.dumps(answer["result"][0], ensure_ascii=False, separators=(",", ":")).encode()


def test_a_good_secret_is_accepted_and_landed(receiver: Receiver, lake: Lake) -> None:
    assert receiver.post(_an_update()).status_code == 200
    receiver.stop()  # SIGTERM seals the open segment
    keys = lake.list_keys(WEBHOOK_PREFIX)
    assert len(keys) == 1 and keys[0].endswith(".ndjson")
    assert lake.read_bytes(keys[0]) == _an_update() + b"\n"


@pytest.mark.parametrize("secret", [None, "wrong-secret"])
def test_a_missing_or_wrong_secret_gets_401(receiver: Receiver, secret: str | None) -> None:
    assert receiver.post(_an_update(), secret=secret).status_code == 401
    assert requests.get(receiver.url + "/healthz", timeout=5).json()["unauthorized"] == 1


def test_a_body_over_one_mebibyte_gets_413(receiver: Receiver) -> None:
    huge = b'{"update_id":1,"message":{"text":"' + b"x" * (1024 * 1024) + b'"}}'
    assert receiver.post(huge).status_code == 413


def test_a_body_that_is_not_json_gets_400(receiver: Receiver) -> None:
    assert receiver.post(b"<html>not json</html>").status_code == 400
    assert receiver.post(b"[1, 2, 3]").status_code == 400


def test_other_chats_are_answered_but_not_landed(lake: Lake, tmp_path: Path) -> None:
    running = Receiver(lake, tmp_path / "spool", {"TELEGRAM_CHAT_IDS": "-42"}).start()
    try:
        assert running.post(_an_update()).status_code == 200
        health = requests.get(running.url + "/healthz", timeout=5).json()
        assert health["dropped_chat_not_allowed"] == 1 and "landed" not in health
    finally:
        running.stop()
    assert lake.list_keys(WEBHOOK_PREFIX) == []


def test_an_acknowledged_message_survives_sigkill(lake: Lake, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    first = Receiver(lake, spool).start()
    assert first.post(_an_update()).status_code == 200
    first.stop(signal.SIGKILL)  # no chance to seal anything
    assert lake.list_keys(WEBHOOK_PREFIX) == []
    assert len(list(spool.glob("*.open"))) == 1

    second = Receiver(lake, spool).start()  # recovery seals the orphaned segment
    second.stop()
    keys = lake.list_keys(WEBHOOK_PREFIX)
    assert len(keys) == 1

    dg.materialize([telegram_bronze], resources={"lake": LakeResource(),
                                                 "telegram": TelegramResource()},
                   run_config={"ops": {"telegram_bronze": {"config": {"files": keys}}}})
    bronze = scan(lake, lake.table_uri("bronze", "telegram_updates")).collect()
    update = json.loads(_an_update())
    assert bronze["update_id"].to_list() == [update["update_id"]]
    assert bronze.filter(pl.col("update_id") == update["update_id"])["update_json"].item() == \
        _an_update().decode()
