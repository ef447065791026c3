"""SIGKILL the webhook at random moments under traffic: nothing acknowledged is lost or doubled."""

import itertools
import json
import random
import threading
import time
from collections import Counter
from pathlib import Path

import requests

from lakehouse.lake.location import Lake
from lakehouse.sources.telegram_landing import WEBHOOK_PREFIX
from lakehouse_tests.telegram.test_webhook import HOOK, SECRET, Receiver

ROUNDS = 5
CLIENTS = 4


def body(update_id: int) -> bytes:
    return json.dumps({"update_id": update_id, "message": {
        "message_id": update_id, "date": 1764000000, "chat": {"id": -100, "type": "group"},
        "text": f"mensagem {update_id}"}}, separators=(",", ":")).encode()


def client(url: str, ids: itertools.count, sent: list[int], acked: list[int],
           stop: threading.Event) -> None:
    session = requests.Session()
    session.headers["X-Telegram-Bot-Api-Secret-Token"] = SECRET
    while not stop.is_set():
        update_id = next(ids)  # never resent: an unacknowledged id may land, or not
        sent.append(update_id)
        try:
            answer = session.post(url + HOOK, data=body(update_id), timeout=5)
        except requests.RequestException:
            session = requests.Session()
            session.headers["X-Telegram-Bot-Api-Secret-Token"] = SECRET
            time.sleep(0.05)
            continue
        if answer.status_code == 200:
            acked.append(update_id)


def test_sigkill_at_random_moments_loses_and_doubles_nothing(lake: Lake, tmp_path: Path) -> None:
    spool, rng = tmp_path / "spool", random.Random(20261201)
    ids = itertools.count(1)
    sent: list[int] = []
    acked: list[int] = []
    # Small segments (about 40 updates) and a short age: kills land while appending, closing,
    # uploading and unlinking.
    args = ("--segment-mb", "0.01", "--segment-seconds", "0.3")
    for _ in range(ROUNDS):
        receiver = Receiver(lake, spool, extra_args=args).start()
        stop = threading.Event()
        clients = [threading.Thread(target=client, args=(receiver.url, ids, sent, acked, stop))
                   for _ in range(CLIENTS)]
        for thread in clients:
            thread.start()
        time.sleep(rng.uniform(0.3, 1.5))
        assert receiver.proc is not None
        receiver.proc.kill()
        receiver.proc.wait(timeout=10)
        stop.set()
        for thread in clients:
            thread.join(timeout=10)
    final = Receiver(lake, spool).start()  # uploads what the killed ones left
    final.stop()

    landed = Counter(json.loads(line)["update_id"] for key in lake.list_keys(WEBHOOK_PREFIX)
                     for line in lake.read_bytes(key).splitlines())
    assert len(acked) > 100
    assert [n for n in acked if landed[n] != 1] == []  # each acknowledged one, exactly once
    assert set(landed) <= set(sent) and max(landed.values()) == 1
    assert sorted(p.name for p in spool.iterdir()) == [".lock"]  # nothing left behind
