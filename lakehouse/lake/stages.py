"""Where a load's time goes: wall and CPU seconds per named stage, summed over its chunks.

The loads fill one in as they run (reported by benchmarks and in their assets' metadata), so a
slow load says which step was slow without a profiler. CPU seconds count every thread of the
process (DuckDB and Polars run several) and move less with the machine's load than wall time.
"""

import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Stages:
    wall: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), _cpu_seconds()
        try:
            yield
        finally:
            self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - wall
            self.cpu[name] = self.cpu.get(name, 0.0) + _cpu_seconds() - cpu

    def add(self, name: str, wall: float, cpu: float) -> None:
        self.wall[name] = self.wall.get(name, 0.0) + wall
        self.cpu[name] = self.cpu.get(name, 0.0) + cpu

    def summary(self) -> dict[str, str]:
        """``{stage: "wall s (cpu s)"}``, rounded, for metadata and logs."""
        return {name: f"{self.wall[name]:.2f} s ({self.cpu[name]:.2f} s CPU)" for name in self.wall}
