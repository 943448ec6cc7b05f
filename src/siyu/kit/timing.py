"""Where a unit of work spends its time, phase by phase (worker logs, benchmarks)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class PhaseTimer:
    """Adds up wall seconds per named phase: `with timer("scoring"): ...`; a phase may run many times.
    Phases nest: time spent in an inner phase counts for the inner one only, so the phases add up to
    the whole."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._open: list[str] = []  # the phases entered, innermost last
        self._since: list[float] = []  # when each was entered or last resumed

    def _credit_innermost(self, now: float) -> None:
        phase = self._open[-1]
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - self._since[-1]

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        now = time.perf_counter()
        if self._open:
            self._credit_innermost(now)
        self._open.append(phase)
        self._since.append(now)
        try:
            yield
        finally:
            now = time.perf_counter()
            self._credit_innermost(now)
            self._open.pop()
            self._since.pop()
            if self._since:
                self._since[-1] = now

    def add(self, other: PhaseTimer) -> None:
        for phase, seconds in other.seconds.items():
            self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    def summary(self) -> str:
        """`phase 1.23s, other 0.45s`, longest first."""
        ordered = sorted(self.seconds.items(), key=lambda item: -item[1])
        return ", ".join(f"{phase} {seconds:.2f}s" for phase, seconds in ordered)
