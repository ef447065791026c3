"""Wall time per named stage of a load, for benchmarks and run logs.

A load takes a ``StageTimes`` and wraps each stage in ``with times("stage"):``. Stages may nest
(a generator decoding records while a Delta write consumes them): each stage is charged only
its own time, the time of stages nested inside it goes to them, so the figures add up to the
load's wall time. The default ``StageTimes()`` costs two clock reads per stage.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager


class StageTimes:
    """Seconds per stage (exclusive of nested stages), summed over every entry of the stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._nested: list[float] = []  # per open stage: time spent in stages inside it

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        self._nested.append(0.0)
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            inner = self._nested.pop()
            self.seconds[stage] = self.seconds.get(stage, 0.0) + elapsed - inner
            if self._nested:
                self._nested[-1] += elapsed

    def total(self) -> float:
        return sum(self.seconds.values())
