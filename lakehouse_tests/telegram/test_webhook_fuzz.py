"""Thousands of generated bodies against the webhook process: every answer is 200 or a 4xx,
every valid update is acknowledged, and what was acknowledged is sealed exactly once."""

import json
from collections import Counter
from pathlib import Path

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakehouse.lake.location import Lake
from lakehouse.sources.telegram_landing import WEBHOOK_PREFIX
from lakehouse_tests.telegram.test_webhook import HOOK, SECRET, Receiver

EXAMPLES = 2000

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
any_json = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
message = st.fixed_dictionaries({
    "message_id": st.integers(1, 2**31), "date": st.integers(0, 2**33),
    "chat": st.fixed_dictionaries({"id": st.integers(-(2**52), 2**52),
                                   "type": st.sampled_from(["private", "group", "supergroup"])}),
    "text": st.text(max_size=300)})
update = st.builds(lambda uid, kind, msg: {"update_id": uid, kind: msg},
                   st.integers(0, 2**63 - 1),
                   st.sampled_from(["message", "edited_message", "channel_post"]), message)
callback = st.builds(lambda uid, msg: {"update_id": uid, "callback_query": {
    "id": "1", "from": {"id": 1}, "message": msg}}, st.integers(0, 2**31), message)
valid = (update | callback).flatmap(lambda u: st.sampled_from([
    json.dumps(u, separators=(",", ":")), json.dumps(u, ensure_ascii=False),
    json.dumps(u, indent=1)]).map(str.encode))  # compact, spaced, and with raw newlines
invalid = (
    st.binary(max_size=300)
    | any_json.map(lambda v: json.dumps(v).encode())
    | st.builds(lambda uid, rest: json.dumps({**rest, "update_id": uid}).encode(),
                scalars, st.dictionaries(st.text(max_size=8), any_json, max_size=3))
    | st.integers(1, 5000).map(lambda n: b'{"update_id":1,"m":' + b"[" * n + b"]" * n + b"}")
)
bodies = valid.map(lambda b: ("valid", b)) | invalid.map(lambda b: ("other", b))


def landed_line(body: bytes) -> bytes:
    if b"\n" in body or b"\r" in body:
        return json.dumps(json.loads(body), ensure_ascii=False, separators=(",", ":")).encode()
    return body


def test_generated_bodies_get_200_or_4xx_and_acknowledged_ones_land_once(
        lake: Lake, tmp_path: Path) -> None:
    running = Receiver(lake, tmp_path / "spool", extra_args=("--segment-mb", "0.05")).start()
    session = requests.Session()
    session.headers.update({"X-Telegram-Bot-Api-Secret-Token": SECRET,
                            "Content-Type": "application/json"})
    acknowledged: Counter[bytes] = Counter()
    statuses: Counter[int] = Counter()

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(bodies)
    def send(tagged: tuple[str, bytes]) -> None:
        kind, body = tagged
        answer = session.post(running.url + HOOK, data=body, timeout=10)
        statuses[answer.status_code] += 1
        assert answer.status_code == 200 or 400 <= answer.status_code < 500, answer.text
        if kind == "valid":
            assert answer.status_code == 200, answer.text
        if answer.status_code == 200:
            assert answer.json() == {"ok": True, "landed": True}
            acknowledged[landed_line(body)] += 1

    try:
        send()
        health = session.get(running.url + "/healthz", timeout=5).json()
    finally:
        running.stop()
    assert statuses[200] > EXAMPLES // 4 and sum(n for s, n in statuses.items() if s != 200) > 100
    assert health["landed"] == sum(acknowledged.values())
    assert health["rejected"] == sum(n for s, n in statuses.items() if s != 200)
    keys = lake.list_keys(WEBHOOK_PREFIX)
    sealed = Counter(line for key in keys for line in lake.read_bytes(key).split(b"\n")[:-1])
    assert sealed == acknowledged
