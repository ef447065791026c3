"""What the benchmarks share: each method in its own process, and one report table.

A method runs in a child process so that its peak RSS is its own (``ru_maxrss`` of that
process); the parent prints times, rows/s, ratios to the reference and to the fastest floor.
"""

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def report_child(method: str, work: Callable[[], int]) -> None:
    """In the child: time ``work`` (which returns its row count) and print the result line."""
    start, cpu = time.perf_counter(), time.process_time()
    rows = work()
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # CPU seconds of every thread: a figure that moves less than wall time on a shared machine.
    print(json.dumps({"method": method, "seconds": seconds, "rows": rows,
                      "peak_rss_mib": peak_kib / 1024,
                      "cpu_seconds": time.process_time() - cpu}))


def run_children(script: str, root: Path, methods: Sequence[str],
                 extra_args: Sequence[str] = ()) -> dict[str, dict]:
    """Run ``script --child <method> --root <root>`` for each method; collect their results."""
    results: dict[str, dict] = {}
    for method in methods:
        proc = subprocess.run([sys.executable, script, "--child", method, "--root", str(root),
                               *extra_args], capture_output=True, text=True, env=os.environ)
        if proc.returncode != 0:
            print(f"{method}: failed: {proc.stderr.strip().splitlines()[-3:]}")
            continue
        results[method] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"  {method}: {results[method]['seconds']:.2f} s", flush=True)
    return results


def print_report(results: dict[str, dict], input_rows: int, notes: str = "") -> None:
    """The table: seconds, rows, input rows/s, vs reference, vs the fastest floor, peak RSS."""
    ref = results["reference"]["seconds"]
    floors = {m: r["seconds"] for m, r in results.items() if m.startswith("floor_")}
    floor_method = min(floors, key=floors.get)
    floor = floors[floor_method]
    print(f"{'method':<18}{'seconds':>9}{'rows':>11}{'rows/s':>12}{'vs reference':>14}"
          f"{'vs floor':>10}{'peak RSS MiB':>14}")
    for method, r in results.items():
        print(f"{method:<18}{r['seconds']:>9.2f}{r['rows']:>11,}"
              f"{input_rows / r['seconds']:>12,.0f}{ref / r['seconds']:>13.1f}x"
              f"{r['seconds'] / floor:>9.2f}x{r['peak_rss_mib']:>14,.0f}")
    print(f"floor = {floor_method} ({floor:.2f} s); rows/s = input records per second; "
          "'vs reference' = reference time / method time (higher is faster); 'vs floor' = "
          f"method time / floor time (lower is better){'; ' + notes if notes else ''}")


# DuckDB doing the work the layer contracts ask of a domain's path, as fast as it can.
HONEST = "honest_duckdb"


def print_honest(results: dict[str, dict], what: str) -> None:
    """The honest floor's line (``HONEST``: DuckDB doing the work the layer contracts ask, as
    fast as it can; ``what``: that work, in words): lakehouse against it in wall and CPU time,
    and what the reference target means against it."""
    if HONEST not in results or "lakehouse" not in results:
        return
    floor, ours = results[HONEST], results["lakehouse"]
    ref = results.get("reference", {}).get("seconds")
    print(f"honest floor = {HONEST} ({floor['seconds']:.2f} s: {what}); lakehouse / "
          f"honest floor = {ours['seconds'] / floor['seconds']:.2f}x wall (target <= 2x), "
          f"{ours['cpu_seconds'] / floor['cpu_seconds']:.2f}x CPU"
          + (f"; vs reference {ref / ours['seconds']:.1f}x (target >= 10x)" if ref else "")
          + f"; lakehouse peak RSS {ours['peak_rss_mib']:,.0f} MiB (target <= 1024)")
    if ref:
        # The two targets together: within 2x of the honest floor is at most ref / (2 floor)
        # times the reference, so ">= 10x the reference" asks for more than that ratio allows
        # when the reference is under 20 honest floors (under 10: beating the floor itself).
        need = ref / 10 / floor["seconds"]
        print(f"reference / honest floor = {ref / floor['seconds']:.1f}x on this machine: >= 10x "
              f"the reference means lakehouse <= {ref / 10:.2f} s = {need:.2f}x the honest floor"
              + (" (faster than the floor itself)" if need < 1 else ""))
    print("CPU seconds (every thread): " + ", ".join(
        f"{m} {r['cpu_seconds']:.2f}" for m, r in results.items() if "cpu_seconds" in r))
