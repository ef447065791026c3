"""Benchmark: the Telegram webhook under load, as Telegram drives it (keep-alive POSTs).

The receiver runs as a real ``lakehouse telegram webhook`` process on a free port, with a local
lake and spool in a temporary folder. A SEPARATE process (this script with ``--drive``, on
uvloop, raw HTTP/1.1 over keep-alive sockets) runs N clients for ``--seconds`` each at
1/8/32/128 clients; each client POSTs a real-shaped update with a new ``update_id`` and waits
for the answer. Printed per level: acknowledged (200) updates/s, p50/p99 latency, errors
(anything but 200, or a broken connection). At the end the receiver is stopped with SIGTERM,
and the sealed raw files are counted: every acknowledged update must be there once.
Also printed: the receiver's peak RSS (``VmHWM``) and the machine's load average.

Usage: python bench/webhook_load.py [--seconds 10] [--levels 1,8,32,128]
Target on 2 cores: >= 2,000 acknowledged durable updates/s at 32 clients, p99 <= 50 ms, 0 errors.
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SECRET = "bench-secret"
HOOK = "/telegram/webhook"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def update_body(update_id: int) -> bytes:
    return json.dumps({"update_id": update_id, "message": {
        "message_id": update_id, "date": 1764000000,
        "chat": {"id": -1001234567890, "type": "supergroup", "title": "Cinema"},
        "from": {"id": 4242, "is_bot": False, "first_name": "Ana", "language_code": "pt-br"},
        "text": "Alguém já viu o novo filme? Achei a fotografia incrível, mas o roteiro..."}},
        ensure_ascii=False, separators=(",", ":")).encode()


def request(update_id: int, port: int) -> bytes:
    body = update_body(update_id)
    return (f"POST {HOOK} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nX-Telegram-Bot-Api-Secret-Token: {SECRET}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, whether the server keeps the connection open)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    keep_alive = head.startswith(b"HTTP/1.1")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            keep_alive = False
    await reader.readexactly(length)
    return status, keep_alive


async def client(port: int, first_id: int, stride: int, until: float,
                 latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    update_id = first_id
    try:
        while time.monotonic() < until:
            start = time.perf_counter()
            writer.write(request(update_id, port))
            try:
                status, keep_alive = await read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                errors.append(update_id)
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            if not keep_alive:  # an HTTP/1.0 server (the old receiver): a connection per update
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            if status == 200:
                latencies.append(time.perf_counter() - start)
            else:
                errors.append(update_id)
            update_id += stride
    finally:
        writer.close()


async def drive_level(port: int, clients: int, seconds: float, base_id: int) -> dict:
    latencies: list[float] = []
    errors: list[int] = []
    start = time.monotonic()
    until = start + seconds
    await asyncio.gather(*(client(port, base_id + n, clients, until, latencies, errors)
                           for n in range(clients)))
    elapsed = time.monotonic() - start
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 \
            if latencies else float("nan")

    return {"clients": clients, "acked": len(latencies), "per_s": len(latencies) / elapsed,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "errors": len(errors)}


def drive(port: int, levels: list[int], seconds: float) -> None:
    """The driver process: one JSON line per level on stdout."""
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    for n, clients in enumerate(levels):
        result = runner(drive_level(port, clients, seconds, base_id=(n + 1) * 100_000_000))
        print(json.dumps(result), flush=True)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_for(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).split(b" ")[1:2] == [b"200"]:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError("the webhook did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--levels", default="1,8,32,128")
    parser.add_argument("--drive", type=int, help=argparse.SUPPRESS)  # the driver: its port
    args = parser.parse_args()
    levels = [int(n) for n in args.levels.split(",")]
    if args.drive:
        drive(args.drive, levels, args.seconds)
        return

    repo = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="webhook-bench-") as tmp:
        port = free_port()
        env = {**os.environ, "LAKEHOUSE_ROOT": f"{tmp}/lake", "TELEGRAM_WEBHOOK_SECRET": SECRET,
               "PYTHONPATH": f"{repo}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        env.pop("TELEGRAM_CHAT_IDS", None)
        server = subprocess.Popen(
            [sys.executable, "-m", "lakehouse.cli", "telegram", "webhook", "--port", str(port),
             "--spool-dir", f"{tmp}/spool", "--segment-seconds", "5"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(port)
            print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
                  f"{os.getloadavg()[2]:.2f} on {os.cpu_count()} CPUs", flush=True)
            print(f"{'clients':>8}{'acked/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}",
                  flush=True)
            driver = subprocess.Popen(
                [sys.executable, __file__, "--drive", str(port), "--levels", args.levels,
                 "--seconds", str(args.seconds)], stdout=subprocess.PIPE, text=True)
            acked = 0
            assert driver.stdout is not None
            for line in driver.stdout:
                r = json.loads(line)
                acked += r["acked"]
                print(f"{r['clients']:>8}{r['per_s']:>10,.0f}{r['p50_ms']:>9.1f}"
                      f"{r['p99_ms']:>9.1f}{r['errors']:>8}", flush=True)
            driver.wait()
            rss = peak_rss_mib(server.pid)
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                answer = b""
                while chunk := s.recv(65536):
                    answer += chunk
            health = json.loads(answer.partition(b"\r\n\r\n")[2])
            if "fsyncs" in health:
                print(f"group commit: {health['landed']:,} updates in {health['fsyncs']:,} "
                      f"fsyncs ({health['landed'] / max(health['fsyncs'], 1):.1f} per fsync)")
            print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            print(f"receiver peak RSS: {rss:.0f} MiB")
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        raw = Path(tmp) / "lake" / "raw"
        landed = sum(p.read_bytes().count(b"\n") for p in raw.rglob("*.ndjson"))
        segments = len(list(raw.rglob("*.ndjson")))
        print(f"landed after SIGTERM: {landed:,} updates in {segments} raw file(s) for "
              f"{acked:,} acknowledged ({'all there' if landed >= acked else 'MISSING SOME'})")


if __name__ == "__main__":
    main()
