"""Who runs which job: handlers registered by name, and the cron schedules that enqueue them.

A handler is `def handler(session: Session, job: Job) -> None`. It runs inside one transaction
together with the job's completion (see `siyu.jobs.queue.run_job`): everything it writes through
`session` commits exactly when the job is marked succeeded, and is rolled back if it raises or if
its lease was lost to another worker. So a handler never commits or rolls back `session` itself
(that would break the atomicity), and signals failure by raising. A long handler calls
`siyu.jobs.heartbeat(session, job)` now and then to keep its lease.

**Handlers must be idempotent.** Delivery is at-least-once: a worker can die after doing external
work (an HTTP call, a message sent) and before its transaction commits, and then the job runs again
once its lease expires. Key every external side effect (e.g. by the job id or a domain key such as
journey/step/contact/entry) and record it in the same transaction as its outcome, so that a second
run sees it was done and skips it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from siyu.jobs.models import Job

if TYPE_CHECKING:
    from siyu.db import Database

Handler = Callable[[Session, Job], None]
# A poller is called by the worker on every turn of its loop and returns how much it did (0: idle).
Poller = Callable[["Database"], int]
# attempts made so far (1 after the first failure) -> how long to wait before the next one
Backoff = Callable[[int], float | dt.timedelta]

DEFAULT_MAX_ATTEMPTS = 5
MAX_NAME_LENGTH = 100  # Job.name is String(100)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class JobRegistryError(ValueError):
    """A handler or schedule was registered wrongly, or a job names no registered handler."""


class UnknownJobError(JobRegistryError, LookupError):
    """`enqueue` was asked for a job name no handler is registered for."""


def exponential_backoff(base: float = 1.0, cap: float = 3600.0) -> Backoff:
    """base * 2**attempts seconds, capped: 2 s, 4 s, 8 s ... 1 h. Deterministic, so tests can predict it."""

    def backoff(attempts: int) -> float:
        # min() before the power keeps 2**attempts small however many attempts a job is allowed
        return float(min(base * 2 ** min(max(attempts, 0), 40), cap))

    return backoff


default_backoff = exponential_backoff()


def backoff_seconds(backoff: Backoff, attempts: int) -> float:
    value = backoff(attempts)
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
    return max(seconds, 0.0)


@dataclass(frozen=True)
class HandlerSpec:
    name: str
    func: Handler
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    retry_backoff: Backoff = default_backoff


@dataclass(frozen=True)
class CronSchedule:
    """Fires at epoch + offset + k * interval (UTC), e.g. every 5 minutes at :00, :05, :10 ...

    Aligning to the epoch rather than to when a worker started means every worker computes the same
    tick times, so the (name, tick_at) unique constraint can dedupe them.
    """

    name: str
    interval: dt.timedelta
    job: str
    offset: dt.timedelta = dt.timedelta(0)
    payload: dict[str, Any] = field(default_factory=dict)

    def latest_tick(self, now: dt.datetime) -> dt.datetime:
        """The most recent tick at or before `now`."""
        since = now.astimezone(dt.UTC) - EPOCH - self.offset
        ticks = since // self.interval
        return EPOCH + self.offset + ticks * self.interval

    def next_tick(self, now: dt.datetime) -> dt.datetime:
        return self.latest_tick(now) + self.interval


_EVERY_N_MINUTES = re.compile(r"^\*/(\d{1,2})$")
_AT_MINUTE = re.compile(r"^(\d{1,2})$")


def parse_every(every: dt.timedelta | str) -> tuple[dt.timedelta, dt.timedelta]:
    """(interval, offset) from a timedelta or a crontab-like minute spec.

    Understood: "*/N" (every N minutes, N dividing 60) and "M" (hourly at minute M), alone or followed
    by "* * * *". Anything richer is refused rather than half-understood.
    """
    if isinstance(every, dt.timedelta):
        if every < dt.timedelta(seconds=1):
            raise JobRegistryError(f"cron interval must be at least 1 second, got {every}")
        return every, dt.timedelta(0)
    fields = every.split()
    if not fields or (len(fields) != 1 and fields[1:] != ["*", "*", "*", "*"]):
        raise JobRegistryError(
            f"cron spec {every!r} not understood: use a timedelta, '*/N' (every N minutes) "
            "or 'M' (hourly at minute M), optionally followed by '* * * *'"
        )
    minute = fields[0]
    if (match := _EVERY_N_MINUTES.match(minute)) is not None:
        n = int(match.group(1))
        if n < 1 or 60 % n:
            raise JobRegistryError(f"cron spec {every!r}: N in '*/N' must divide 60 (1, 2, 3, 4, 5, 6, 10, ...)")
        return dt.timedelta(minutes=n), dt.timedelta(0)
    if (match := _AT_MINUTE.match(minute)) is not None:
        m = int(match.group(1))
        if m > 59:
            raise JobRegistryError(f"cron spec {every!r}: minute must be 0-59")
        return dt.timedelta(hours=1), dt.timedelta(minutes=m)
    if minute == "*":
        return dt.timedelta(minutes=1), dt.timedelta(0)
    raise JobRegistryError(f"cron spec {every!r} not understood: use '*/N', 'M', '*' or a timedelta")


def _same_function(a: Handler, b: Handler) -> bool:
    # A module imported under two names (e.g. via sys.path and via a package) registers the same
    # function twice; that is not a conflict. Two different functions under one name are.
    code_a, code_b = getattr(a, "__code__", None), getattr(b, "__code__", None)
    return (
        getattr(a, "__qualname__", None) == getattr(b, "__qualname__", None)
        and code_a is not None
        and code_b is not None
        and code_a.co_filename == code_b.co_filename
    )


class Registry:
    """Handlers and cron schedules by name. One process-wide instance (`registry`); tests may build their own."""

    def __init__(self) -> None:
        self._handlers: dict[str, HandlerSpec] = {}
        self._schedules: dict[str, CronSchedule] = {}
        self._pollers: dict[str, Poller] = {}
        self._own_thread: set[str] = set()

    def add_handler(
        self,
        name: str,
        func: Handler,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        retry_backoff: Backoff | None = None,
    ) -> HandlerSpec:
        if not name or len(name) > MAX_NAME_LENGTH:
            raise JobRegistryError(f"job name must be 1-{MAX_NAME_LENGTH} characters, got {name!r}")
        if max_attempts < 1:
            raise JobRegistryError(f"max_attempts for {name!r} must be at least 1, got {max_attempts}")
        existing = self._handlers.get(name)
        if existing is not None and not _same_function(existing.func, func):
            raise JobRegistryError(
                f"job handler {name!r} is already registered by {existing.func.__module__}."
                f"{existing.func.__qualname__}; pick another name"
            )
        spec = HandlerSpec(name, func, max_attempts, retry_backoff or default_backoff)
        self._handlers[name] = spec
        return spec

    def add_schedule(
        self,
        name: str,
        every: dt.timedelta | str,
        *,
        job: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> CronSchedule:
        if not name or len(name) > MAX_NAME_LENGTH:
            raise JobRegistryError(f"cron name must be 1-{MAX_NAME_LENGTH} characters, got {name!r}")
        interval, offset = parse_every(every)
        schedule = CronSchedule(name, interval, job or name, offset, dict(payload or {}))
        existing = self._schedules.get(name)
        if existing is not None and existing != schedule:
            raise JobRegistryError(f"cron schedule {name!r} is already registered with {existing}")
        self._schedules[name] = schedule
        return schedule

    def add_poller(self, name: str, func: Poller, *, own_thread: bool = False) -> None:
        """Stream consumers that must keep up within seconds (a job per event would be too slow).

        `own_thread`: a long-running worker gives the poller a thread of its own, so that it is not
        held up while the others run long turns (received events wait behind a pipeline pass)."""
        existing = self._pollers.get(name)
        if existing is not None and not _same_function(existing, func):  # type: ignore[arg-type]
            raise JobRegistryError(f"poller {name!r} is already registered by {existing.__module__}")
        self._pollers[name] = func
        if own_thread:
            self._own_thread.add(name)

    def pollers(self, *, own_thread: bool | None = None) -> list[tuple[str, Poller]]:
        """All pollers by name, or only those with (own_thread=True) or without a thread of their own."""
        return sorted(
            (name, func)
            for name, func in self._pollers.items()
            if own_thread is None or (name in self._own_thread) == own_thread
        )

    def get(self, name: str) -> HandlerSpec:
        try:
            return self._handlers[name]
        except KeyError:
            known = ", ".join(sorted(self._handlers)) or "none"
            raise UnknownJobError(
                f"no job handler named {name!r} is registered (known: {known}). Register it with "
                "@job_handler and make sure its module is imported - by the worker too, e.g. listed "
                "in SIYU_JOB_MODULES"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._handlers

    def handler_names(self) -> list[str]:
        return sorted(self._handlers)

    def schedules(self) -> list[CronSchedule]:
        # sorted so every worker takes cron_tick locks in the same order (no deadlocks)
        return [self._schedules[name] for name in sorted(self._schedules)]

    def __iter__(self) -> Iterator[HandlerSpec]:
        return iter(self._handlers[name] for name in sorted(self._handlers))


registry = Registry()


def job_handler(
    name: str,
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    retry_backoff: Backoff | None = None,
    registry: Registry = registry,
) -> Callable[[Handler], Handler]:
    """Register `def handler(session, job) -> None` under `name`. The handler must be idempotent.

    max_attempts: how many times the job may start before it is given up as failed (dead letter).
    retry_backoff: attempts -> seconds (or timedelta) to wait before retrying; default 2**attempts s, capped at 1 h.
    """

    def decorate(func: Handler) -> Handler:
        registry.add_handler(name, func, max_attempts=max_attempts, retry_backoff=retry_backoff)
        return func

    return decorate


def cron(
    name: str,
    *,
    every: dt.timedelta | str,
    payload: dict[str, Any] | None = None,
    max_attempts: int = 3,
    retry_backoff: Backoff | None = None,
    registry: Registry = registry,
) -> Callable[[Handler], Handler]:
    """Register a periodic job: the decorated handler, and a schedule enqueuing it at each tick.

    `every` is a timedelta (ticks aligned to the Unix epoch: every 5 minutes fires at :00, :05 ...)
    or a crontab-like minute spec: "*/5", "15" (hourly at :15), optionally followed by "* * * *".
    A tick fires once however many workers run (see `siyu.jobs.queue.fire_due_cron`).
    """

    def decorate(func: Handler) -> Handler:
        registry.add_handler(name, func, max_attempts=max_attempts, retry_backoff=retry_backoff)
        registry.add_schedule(name, every, job=name, payload=payload)
        return func

    return decorate


def poller(name: str, *, own_thread: bool = False, registry: Registry = registry) -> Callable[[Poller], Poller]:
    """Register `def poll(db) -> int`, run by every worker on each turn of its loop (or, with
    own_thread, in a loop of its own); returns work done.

    A poller must be safe to run in several workers at once (e.g. claim its input with a row lock
    and skip what another worker holds) and must commit its own transactions.
    """

    def decorate(func: Poller) -> Poller:
        registry.add_poller(name, func, own_thread=own_thread)
        return func

    return decorate


__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "Backoff",
    "CronSchedule",
    "Handler",
    "HandlerSpec",
    "JobRegistryError",
    "Registry",
    "UnknownJobError",
    "backoff_seconds",
    "cron",
    "default_backoff",
    "exponential_backoff",
    "job_handler",
    "parse_every",
    "poller",
    "registry",
]
