"""Garbage-collector settings for long-running processes (the API server, the worker)."""

from __future__ import annotations

import gc


def settle_after_startup() -> None:
    """Collects once, then moves every object alive after start-up (modules, mappers, the app) out of
    the collector's reach with gc.freeze(): they are never garbage, and without this each full
    collection walks them all. Batch work allocates enough to trigger many: decoding a 1,000-event
    batch took 12-15 ms on average before, 3-5 ms after (bench/ingest.py's processes). Call it once,
    where a process starts serving; not in tests, which create many apps."""
    gc.collect()
    gc.freeze()
