"""Wall and CPU time per named stage of a load, for benchmarks and run logs.

A load takes a ``StageTimes`` and wraps each stage in ``with times("stage"):``. Stages may nest:
each stage is charged only its own time, the time of stages nested inside it goes to them, so
the figures add up to the load's time. CPU time is the whole process's (every thread of DuckDB,
Polars and delta-rs): on a machine shared with other work it moves far less than wall time.
"""

import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager


class StageTimes:
    """Seconds per stage (exclusive of nested stages), summed over every entry of the stage:
    ``seconds`` (wall) and ``cpu_seconds`` (process CPU time); ``peak_rss_mib`` is the
    process's peak RSS when the stage last ended (the stage where it first reaches the run's
    peak is the one holding the most)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}
        self.peak_rss_mib: dict[str, float] = {}
        self._nested: list[tuple[float, float]] = []  # per open stage: (wall, cpu) of inner ones

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        self._nested.append((0.0, 0.0))
        try:
            yield
        finally:
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            inner_wall, inner_cpu = self._nested.pop()
            self.seconds[stage] = self.seconds.get(stage, 0.0) + wall - inner_wall
            self.cpu_seconds[stage] = self.cpu_seconds.get(stage, 0.0) + cpu - inner_cpu
            self.peak_rss_mib[stage] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            if self._nested:
                outer_wall, outer_cpu = self._nested[-1]
                self._nested[-1] = (outer_wall + wall, outer_cpu + cpu)


    def add(self, stage: str, seconds: float, cpu_seconds: float) -> None:
        """Time measured elsewhere (another process, a callback) charged to ``stage``."""
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
        self.cpu_seconds[stage] = self.cpu_seconds.get(stage, 0.0) + cpu_seconds

    def summary(self) -> dict[str, str]:
        """``{stage: "wall s (cpu s CPU)"}``, rounded, for run metadata."""
        return {stage: f"{self.seconds[stage]:.2f} s ({self.cpu_seconds[stage]:.2f} s CPU)"
                for stage in self.seconds}


def stage_summary(times: StageTimes) -> str:
    """One log line: the stages by wall time, slowest first."""
    stages = sorted(times.seconds.items(), key=lambda kv: -kv[1])
    return "seconds per stage: " + ", ".join(f"{stage} {seconds:.2f}" for stage, seconds in stages)
