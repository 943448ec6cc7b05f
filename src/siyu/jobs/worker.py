"""The worker process: fire due cron ticks, claim due jobs, run them, sleep when idle, repeat.

Start any number of workers (`siyu worker`), on any number of hosts: claims never hand one job to
two workers at once, and cron ticks fire once. SIGTERM / SIGINT make a worker finish the job it is
running and exit; a second signal stops it at once (the job's lease then expires and another worker
runs it again - handlers are idempotent).
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from siyu.config import Settings, get_settings
from siyu.db import Database
from siyu.jobs.queue import claim, fire_due_cron, run_job
from siyu.jobs.registry import Poller, Registry
from siyu.jobs.registry import registry as default_registry

log = logging.getLogger("siyu.jobs.worker")

# A poller with its own thread looks again this soon when it found nothing (received events wait no longer).
OWN_THREAD_IDLE_SECONDS = 0.05
MAX_WORKER_ID = 90  # job.locked_by is String(100); thread suffixes need the rest


# Modules that register handlers, cron schedules and pollers; a new domain with background work adds itself here.
BUILT_IN_JOB_MODULES = (
    "siyu.jobs.builtin",
    "siyu.events.tasks",
    "siyu.wecom.tasks",
    "siyu.usermodel.tasks",
    "siyu.scoring.tasks",
    "siyu.groups.tasks",
    "siyu.delivery.tasks",
    "siyu.journeys.tasks",
    "siyu.broadcasts.tasks",
    "siyu.stafftasks.tasks",
)


def load_job_modules(settings: Settings) -> list[str]:
    """Import the built-in jobs and every module in settings.job_modules, which register handlers."""
    extra = (m.strip() for m in settings.job_modules.split(",") if m.strip())
    names = [*BUILT_IN_JOB_MODULES, *extra]
    for name in names:
        importlib.import_module(name)
    return names


def default_worker_id() -> str:
    # host and pid say where a stuck job's worker ran; the random part keeps restarts apart
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """Runs `concurrency` threads, each claiming one job at a time under its own worker id."""

    def __init__(
        self,
        db: Database,
        *,
        concurrency: int = 1,
        worker_id: str | None = None,
        settings: Settings | None = None,
        registry: Registry | None = None,
        stop_event: threading.Event | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.db = db
        self.concurrency = concurrency
        self.settings = settings or get_settings()
        self.registry = registry or default_registry
        self.worker_id = (worker_id or default_worker_id())[:MAX_WORKER_ID]
        self.stop_event = stop_event or threading.Event()
        self._cron_known: dict[str, dt.datetime] = {}
        self._count = 0
        self._count_lock = threading.Lock()
        self._errors: list[BaseException] = []

    def stop(self) -> None:
        """Ask every thread to exit after the job it is running."""
        self.stop_event.set()

    def run(self, *, once: bool = False) -> int:
        """Work until stopped; with once=True, until no job is due. Returns how many jobs were run."""
        self._count = 0
        self._errors = []
        if once:
            self._fire_cron(raise_errors=True)
            self._raise_poll_errors = True
        threads = [
            threading.Thread(target=self._loop, args=(index, once), name=f"siyu-worker-{index}", daemon=True)
            for index in range(1, self.concurrency)
        ]
        if not once:
            threads += [
                threading.Thread(target=self._poll_loop, args=(name, poll), name=f"siyu-poller-{name}", daemon=True)
                for name, poll in self.registry.pollers(own_thread=True)
            ]
        for thread in threads:
            thread.start()
        try:
            self._loop(0, once)  # thread 0 is the calling thread: concurrency=1 needs no threads at all
        except BaseException:
            self.stop_event.set()  # e.g. a second Ctrl-C: the other threads stop after their job
            raise
        finally:
            for thread in threads:
                # join in slices so the main thread still runs signal handlers while it waits
                while thread.is_alive():
                    thread.join(0.2)
        if self._errors:
            raise self._errors[0]
        return self._count

    def _thread_worker_id(self, index: int) -> str:
        return self.worker_id if self.concurrency == 1 else f"{self.worker_id}#{index}"

    def _fire_cron(self, *, raise_errors: bool = False) -> None:
        try:
            fire_due_cron(self.db, registry=self.registry, known=self._cron_known)
        except Exception:
            if raise_errors:
                raise
            log.exception("firing cron ticks failed; will try again")

    def _poll_loop(self, name: str, poll: Poller) -> None:
        """A poller with a thread of its own: again at once while it finds work, else after a short nap."""
        while not self.stop_event.is_set():
            try:
                done = poll(self.db)
            except Exception:
                log.exception("poller %s failed; will try again", name)
                self.stop_event.wait(self.settings.job_poll_seconds)  # not twenty tracebacks a second
                continue
            if not done:
                self.stop_event.wait(OWN_THREAD_IDLE_SECONDS)

    def _poll(self, *, once: bool = False) -> int:
        """Runs the registered pollers (stream consumers) once; how much they did. A long-running
        worker leaves the pollers with a thread of their own to that thread."""
        done = 0
        for name, poll in self.registry.pollers(own_thread=None if once else False):
            try:
                done += poll(self.db)
            except Exception:
                if self._raise_poll_errors:
                    raise
                log.exception("poller %s failed; will try again", name)
        return done

    _raise_poll_errors = False

    def _loop(self, index: int, once: bool) -> None:
        worker_id = self._thread_worker_id(index)
        names = self.registry.handler_names()
        lease = self.settings.job_lease_seconds
        poll = self.settings.job_poll_seconds
        while not self.stop_event.is_set():
            try:
                if index == 0 and not once:
                    self._fire_cron()
                polled = self._poll(once=once) if index == 0 else 0
                jobs = claim(self.db, worker_id, 1, lease, names=names)
                if not jobs:
                    if polled:
                        continue
                    if once:
                        return
                    self.stop_event.wait(poll)
                    continue
                for job in jobs:
                    outcome = run_job(self.db, job, worker_id=worker_id, registry=self.registry, lease_seconds=lease)
                    log.debug("job %s (%s) attempt %s: %s", job.id, job.name, job.attempts, outcome)
                    with self._count_lock:
                        self._count += 1
            except Exception as exc:
                # e.g. the database restarting, or SQLite's lock held past busy_timeout by a long
                # handler: log and try again after a pause rather than die. A drain (once) reports it.
                if once:
                    self._errors.append(exc)
                    self.stop_event.set()
                    return
                log.exception("worker %s: error in the claim/run loop; retrying", worker_id)
                self.stop_event.wait(poll)


@contextmanager
def _graceful_signals(stop_event: threading.Event) -> Iterator[None]:
    """First SIGTERM/SIGINT: finish the current job, then exit. Second: stop now (KeyboardInterrupt)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread
        return

    def handle(signum: int, _frame: FrameType | None) -> None:
        if stop_event.is_set():
            raise KeyboardInterrupt
        log.warning("received %s: finishing the current job, then exiting", signal.Signals(signum).name)
        stop_event.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_worker(
    db: Database,
    *,
    concurrency: int = 1,
    once: bool = False,
    stop_event: threading.Event | None = None,
    worker_id: str | None = None,
    settings: Settings | None = None,
    registry: Registry | None = None,
) -> int:
    """Run a worker until SIGTERM/SIGINT or `stop_event`; with once=True, drain due jobs and return.

    Imports the handler modules in settings.job_modules first. Returns the number of jobs run
    (succeeded, retried, failed or lost alike).
    """
    settings = settings or get_settings()
    load_job_modules(settings)
    worker = Worker(
        db,
        concurrency=concurrency,
        worker_id=worker_id,
        settings=settings,
        registry=registry,
        stop_event=stop_event,
    )
    log.info("worker %s starting (concurrency %s%s)", worker.worker_id, concurrency, ", once" if once else "")
    with _graceful_signals(worker.stop_event):
        count = worker.run(once=once)
    log.info("worker %s stopped after %s jobs", worker.worker_id, count)
    return count


__all__ = ["Worker", "default_worker_id", "load_job_modules", "run_worker"]
