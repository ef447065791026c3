"""The webhook under abuse and faults: malformed requests, keep-alive, a lake that fails."""

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
import requests

from lakehouse.lake.location import Lake
from lakehouse.lake.segments import SegmentWriter, SpoolInUseError
from lakehouse.sources.telegram_landing import WEBHOOK_PREFIX, webhook_key
from lakehouse_tests.telegram.test_webhook import HOOK, SECRET, Receiver

UPDATE = {"update_id": 7001, "message": {"message_id": 1, "date": 1764000000,
                                          "chat": {"id": -100, "type": "group"}, "text": "oi"}}


def body_of(update: object) -> bytes:
    return json.dumps(update, separators=(",", ":")).encode()


def raw_request(body: bytes, *, length: bytes | None = None, secret: bytes = SECRET.encode(),
                method: bytes = b"POST", path: bytes = HOOK.encode()) -> bytes:
    length = str(len(body)).encode() if length is None else length
    return (method + b" " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nX-Telegram-Bot-Api-Secret-Token: " + secret +
            b"\r\nContent-Length: " + length + b"\r\n\r\n" + body)


def read_answer(sock: socket.socket) -> tuple[int, bytes]:
    """(status, body) of one HTTP/1.1 answer on ``sock`` (0 when the server closed silently)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return (0, b"") if not data else (int(data.split(b" ", 2)[1]), b"")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                   if line.lower().startswith(b"content-length:")), 0)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return int(head.split(b" ", 2)[1]), rest[:length]


def exchange(port: int, raw: bytes, timeout: float = 10.0) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        return read_answer(sock)[0]


def health(receiver: Receiver) -> requests.Response:
    return requests.get(receiver.url + "/healthz", timeout=5)


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    """One receiver for this module's request tests: 1 s for a request's head and body, at
    most 50 connections, only chat -100 landed."""
    tmp = tmp_path_factory.mktemp("quick")
    running = Receiver(Lake.from_env(str(tmp / "lake")), tmp / "spool",
                       {"TELEGRAM_CHAT_IDS": "-100"},
                       extra_args=("--request-seconds", "1", "--max-connections", "50")).start()
    yield running
    running.stop()


DEEP = b'{"update_id":1,"message":' + b"[" * 1000 + b"]" * 1000 + b"}"
GOOD = body_of(UPDATE)
MALFORMED = {
    "not JSON": (raw_request(b"<html>"), 400, "bad_json"),
    "JSON but not an object": (raw_request(b"[1,2]"), 400, "not_an_object"),
    "a JSON string": (raw_request(b'"update"'), 400, "not_an_object"),
    "NaN is not JSON": (raw_request(b'{"update_id":1,"x":NaN}'), 400, "bad_json"),
    "not UTF-8": (raw_request(b'{"update_id":1,"message":{"text":"\xff"}}'), 400,
                  "bad_encoding"),
    "nested 1000 deep": (raw_request(DEEP), 400, "too_deep"),
    "nested 100000 deep": (raw_request(b"[" * 100_000 + b"]" * 100_000), 400, "too_deep"),
    "update_id true": (raw_request(body_of({**UPDATE, "update_id": True})), 400, "bad_update_id"),
    "update_id 5.5": (raw_request(body_of({**UPDATE, "update_id": 5.5})), 400, "bad_update_id"),
    "update_id a string": (raw_request(body_of({**UPDATE, "update_id": "5"})), 400,
                           "bad_update_id"),
    "update_id negative": (raw_request(body_of({**UPDATE, "update_id": -1})), 400,
                           "bad_update_id"),
    "no update_id": (raw_request(body_of({"message": UPDATE["message"]})), 400, "bad_update_id"),
    "callback_query.message a string": (
        raw_request(body_of({"update_id": 2, "callback_query": {"id": "1", "message": "x"}})),
        400, "bad_shape"),
    "callback_query.message a list": (
        raw_request(body_of({"update_id": 2, "callback_query": {"message": [1]}})), 400,
        "bad_shape"),
    "message a number": (raw_request(body_of({"update_id": 2, "message": 5})), 400, "bad_shape"),
    "Content-Length: abc": (raw_request(GOOD, length=b"abc"), 400, "bad_http"),
    "Content-Length: -1": (raw_request(GOOD, length=b"-1"), 400, "bad_http"),
    "Content-Length longer than the body": (raw_request(GOOD, length=b"500"), 408,
                                            "body_timeout"),
    "a head that never ends": (b"POST " + HOOK.encode() + b" HTTP/1.1\r\nHost: x\r\n", 408,
                               "head_timeout"),
    "a head over 64 KiB": (b"POST " + HOOK.encode() + b" HTTP/1.1\r\nX-Big: " + b"a" * 70_000 +
                           b"\r\n\r\n", 431, "head_too_large"),
    "body over 1 MiB, declared": (raw_request(b"", length=b"2000000"), 413, "too_large"),
    "body over 1 MiB, sent": (
        b"POST " + HOOK.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Telegram-Bot-Api-Secret-Token: "
        + SECRET.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"%x\r\n%s\r\n" % (65536, b"x" * 65536) for _ in range(17)) + b"0\r\n\r\n",
        413, "too_large"),
    "wrong secret": (raw_request(GOOD, secret=b"nope"), 401, "unauthorized"),
    "GET on the hook": (raw_request(b"", method=b"GET"), 405, "method_not_allowed"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_each_malformed_request_gets_a_4xx_and_is_counted(quick: Receiver, name: str) -> None:
    raw, status, counter = MALFORMED[name]
    before = health(quick).json()
    assert exchange(quick.port, raw) == status
    after = health(quick).json()
    assert after.get(counter, 0) == before.get(counter, 0) + 1
    assert after["rejected"] == before.get("rejected", 0) + 1
    # ...and the server still lands the next update
    assert quick.post(GOOD).status_code == 200
    assert health(quick).json()["landed"] == after.get("landed", 0) + 1


def test_a_chat_filter_copes_with_any_shape(quick: Receiver) -> None:
    landed = health(quick).json().get("landed", 0)
    odd = {"update_id": 3, "my_chat_member": {"chat": {"id": "-100"}, "date": 1}}
    assert quick.post(body_of(odd)).status_code == 200  # no int chat id: landed
    other = {**UPDATE, "message": {**UPDATE["message"], "chat": {"id": -5}}}
    assert quick.post(body_of(other)).json() == {"ok": True, "landed": False}
    assert health(quick).json()["landed"] == landed + 1


def test_several_requests_share_one_keep_alive_connection(quick: Receiver) -> None:
    with socket.create_connection(("127.0.0.1", quick.port), timeout=5) as sock:
        for n in range(5):
            sock.sendall(raw_request(body_of({**UPDATE, "update_id": 100 + n})))
            status, answer = read_answer(sock)
            assert (status, json.loads(answer)) == (200, {"ok": True, "landed": True})


def test_idle_connections_do_not_starve_real_requests(quick: Receiver) -> None:
    idle = [socket.create_connection(("127.0.0.1", quick.port), timeout=5) for _ in range(60)]
    try:
        time.sleep(1.5)  # past the head deadline: the idle ones are closed
        assert quick.post(GOOD).status_code == 200
        assert all(sock.recv(1) == b"" for sock in idle[:50])  # closed by the server
    finally:
        for sock in idle:
            sock.close()


# -- the sealer against a failing lake ---------------------------------------------------------

def _drop_bucket(lake: Lake) -> tuple[object, str]:
    s3 = boto3.client("s3", endpoint_url=lake.storage_options["AWS_ENDPOINT_URL"],
                      region_name="us-east-1")
    bucket = lake.root.removeprefix("s3://").split("/")[0]
    s3.delete_bucket(Bucket=bucket)
    return s3, bucket


def _wait(predicate, timeout: float = 30.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_the_sealer_survives_a_failing_lake_and_healthz_says_so(
        s3_lake: Lake, tmp_path: Path) -> None:
    s3, bucket = _drop_bucket(s3_lake)
    log = tmp_path / "webhook.log"
    # Segments of about 100 bytes: each update fills one, which is sealed (and fails to
    # upload) right after its fsync; and an age of 0.3 s for the open one.
    running = Receiver(s3_lake, tmp_path / "spool", log=log,
                       extra_args=("--segment-mb", "0.0001", "--segment-seconds", "0.3")).start()
    try:
        for n in range(3):
            assert running.post(body_of({**UPDATE, "update_id": 10 + n})).status_code == 200
        _wait(lambda: health(running).status_code == 503)
        sick = health(running).json()
        assert sick["status"] == "unsealed" and sick["unsealed_records"] == 3
        assert "upload of" in sick["reason"]
        # it keeps receiving meanwhile, and keeps trying
        assert running.post(body_of({**UPDATE, "update_id": 13})).status_code == 200
        time.sleep(2)
        s3.create_bucket(Bucket=bucket)
        _wait(lambda: health(running).status_code == 200)
        assert health(running).json()["unsealed_records"] == 0
    finally:
        running.stop()
    keys = s3_lake.list_keys(WEBHOOK_PREFIX)
    ids = sorted(json.loads(line)["update_id"] for key in keys
                 for line in s3_lake.read_bytes(key).splitlines())
    assert ids == [10, 11, 12, 13]
    assert SECRET not in log.read_text()


def test_shutdown_says_what_it_left_and_the_next_start_lands_it(
        s3_lake: Lake, tmp_path: Path) -> None:
    s3, bucket = _drop_bucket(s3_lake)
    spool, log = tmp_path / "spool", tmp_path / "webhook.log"
    first = Receiver(s3_lake, spool, log=log, extra_args=("--shutdown-seconds", "1")).start()
    for n in range(2):
        assert first.post(body_of({**UPDATE, "update_id": 30 + n})).status_code == 200
    first.stop(signal.SIGTERM)
    assert first.proc is not None and first.proc.returncode == 0
    said = log.read_text()
    assert f"2 acknowledged record(s) in 1 segment(s) still only in the spool folder {spool}" \
        in said
    second = Receiver(s3_lake, spool).start()  # starts and serves with the lake still down
    assert second.post(body_of({**UPDATE, "update_id": 32})).status_code == 200
    _wait(lambda: health(second).status_code == 503)
    assert health(second).json()["unsealed_records"] == 3
    s3.create_bucket(Bucket=bucket)
    _wait(lambda: health(second).status_code == 200)
    second.stop()
    ids = sorted(json.loads(line)["update_id"] for key in s3_lake.list_keys(WEBHOOK_PREFIX)
                 for line in s3_lake.read_bytes(key).splitlines())
    assert ids == [30, 31, 32]


def test_two_writers_at_the_same_moment_never_write_the_same_raw_key(
        lake: Lake, tmp_path: Path) -> None:
    moment = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    writers = [SegmentWriter(lake, tmp_path / f"spool-{n}", webhook_key, clock=lambda: moment)
               for n in range(2)]
    for n, writer in enumerate(writers):
        writer.append(body_of({**UPDATE, "update_id": 40 + n}))
        writer.close()
    keys = lake.list_keys(WEBHOOK_PREFIX)
    assert len(keys) == 2
    assert sorted(lake.read_bytes(k) for k in keys) == [body_of({**UPDATE, "update_id": n}) + b"\n"
                                                        for n in (40, 41)]


def test_one_spool_folder_takes_one_writer(lake: Lake, tmp_path: Path) -> None:
    first = SegmentWriter(lake, tmp_path / "spool", webhook_key)
    with pytest.raises(SpoolInUseError, match="used by another running writer"):
        SegmentWriter(lake, tmp_path / "spool", webhook_key)
    first.close()
    SegmentWriter(lake, tmp_path / "spool", webhook_key).close()


FULL_DISK = """
import json, resource, signal, sys
from pathlib import Path
from lakehouse.lake.location import Lake
from lakehouse.lake.segments import SegmentWriter
writer = SegmentWriter(Lake.from_env(sys.argv[1]), Path(sys.argv[2]), lambda n, t: "raw/t/" + n)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (250, hard))  # a disk that fills at 250 bytes
acked = []
for n in range(13):
    if n == 10:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # room again
    try:
        writer.append(b'{"update_id":%d,"pad":"%s"}' % (n, b"x" * 40))
        acked.append(n)
    except OSError:
        pass
writer.close()
print(json.dumps(acked))
"""


def test_a_failed_write_never_tears_the_next_record(lake: Lake, tmp_path: Path) -> None:
    # In a child process: the file-size limit stands in for a full disk.
    done = subprocess.run([sys.executable, "-c", FULL_DISK, lake.root, str(tmp_path / "spool")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    acked = json.loads(done.stdout)
    assert 10 < len(acked) < 13  # some writes failed, the rest were acknowledged
    lines = [line for key in lake.list_keys("raw/t") for line in lake.read_bytes(key).splitlines()]
    assert sorted(json.loads(line)["update_id"] for line in lines) == acked


class StallingProxy:
    """A TCP proxy to the S3 server that holds every byte the client sends while ``stall``."""

    def __init__(self, upstream: str):
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.stall = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, dest: socket.socket, held: bool) -> None:
        try:
            while data := source.recv(65536):
                while held and self.stall.is_set():
                    time.sleep(0.05)
                dest.sendall(data)
        except OSError:
            pass
        finally:
            source.close(), dest.close()

    def close(self) -> None:
        self.listener.close()


def test_a_stalled_upload_never_stalls_a_request(s3_lake: Lake, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = StallingProxy(s3_lake.storage_options["AWS_ENDPOINT_URL"])
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    running = Receiver(s3_lake, tmp_path / "spool", extra_args=("--segment-seconds", "0.5")).start()
    try:
        proxy.stall.set()  # S3 stops answering: the next age seal hangs in its upload
        assert running.post(body_of({**UPDATE, "update_id": 50})).status_code == 200
        time.sleep(2)  # the segment is sealed by age now, its upload held by the proxy
        slowest = 0.0
        for n in range(51, 71):
            start = time.monotonic()
            assert running.post(body_of({**UPDATE, "update_id": n})).status_code == 200
            slowest = max(slowest, time.monotonic() - start)
        assert slowest < 3.0  # the old receiver held every request for the whole stall
        assert health(running).json()["unsealed_records"] == 21
        assert s3_lake.list_keys(WEBHOOK_PREFIX) == []  # (the upload is indeed held)
        proxy.stall.clear()
    finally:
        running.stop()
        proxy.close()
    ids = sorted(json.loads(line)["update_id"] for key in s3_lake.list_keys(WEBHOOK_PREFIX)
                 for line in s3_lake.read_bytes(key).splitlines())
    assert ids == list(range(50, 71))
