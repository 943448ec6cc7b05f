"""The one clock. Tests move it (`set_clock`) instead of sleeping."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

_clock: Callable[[], dt.datetime] | None = None


def utcnow() -> dt.datetime:
    return _clock() if _clock is not None else dt.datetime.now(dt.UTC)


def set_clock(clock: Callable[[], dt.datetime] | None) -> None:
    """Replace the clock (tests); None restores the real one."""
    global _clock  # noqa: PLW0603 - a process-wide clock is the point
    _clock = clock


def ensure_utc(value: dt.datetime) -> dt.datetime:
    """Aware datetimes are converted to UTC; naive ones are taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)
