"""The worker: draining, graceful stop, a worker killed mid-job, concurrent workers, the cleanup cron."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from jobs_fixtures import effect_table_fixture, registry_fixture  # noqa: F401 - pytest fixtures
from jobs_test_handlers import count_effects, effects, record_effect
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.config import Settings
from siyu.db import Database
from siyu.jobs import JobOutcome, Registry, claim, enqueue, run_job
from siyu.jobs.builtin import cleanup
from siyu.jobs.models import CronTick, Job, JobStatus
from siyu.jobs.worker import Worker, run_worker
from siyu.kit.time import utcnow

HERE = Path(__file__).resolve().parent


def worker_settings(settings: Settings, **overrides: object) -> Settings:
    return settings.model_copy(update={"job_poll_seconds": 0.05, "job_lease_seconds": 30, **overrides})


def enqueue_many(db: Database, registry: Registry | None, name: str, count: int, **payload: object) -> list[int]:
    with db.transaction() as session:
        ids = []
        for i in range(count):
            job = enqueue(session, name, {"i": i, **payload}, registry=registry)
            assert job is not None
            ids.append(job.id)
        return ids


def job_states(db: Database) -> dict[int, Job]:
    with db.transaction(write=False) as s:
        return {j.id: j for j in s.scalars(select(Job))}


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


# --------------------------------------------------------------------------- in-process


def test_run_worker_once_drains_due_jobs_and_fires_cron(
    db: Database, registry: Registry, settings: Settings, clock, effect_table: None
) -> None:
    registry.add_handler("t.effect", record_effect)
    registry.add_schedule("t.effect.cron", dt.timedelta(minutes=5), job="t.effect")
    ids = enqueue_many(db, registry, "t.effect", 3)
    with db.transaction() as session:
        enqueue(session, "t.effect", {}, delay=dt.timedelta(minutes=1), registry=registry)  # not due yet
    count = run_worker(db, once=True, settings=worker_settings(settings), worker_id="w", registry=registry)
    assert count == 4  # 3 due jobs + the cron tick's job
    states = job_states(db)
    assert all(states[i].status == JobStatus.succeeded for i in ids)
    assert sorted(s.status for s in states.values()) == [JobStatus.queued] + [JobStatus.succeeded] * 4
    assert count_effects(db) == 4
    assert run_worker(db, once=True, settings=worker_settings(settings), registry=registry) == 0


def test_stop_event_lets_the_current_job_finish(
    db: Database, registry: Registry, settings: Settings, effect_table: None
) -> None:
    stop = threading.Event()

    def stop_midway(session: Session, job: Job) -> None:
        stop.set()  # e.g. SIGTERM arrives while the job runs
        record_effect(session, job)

    registry.add_handler("t.stop", stop_midway)
    first, second = enqueue_many(db, registry, "t.stop", 2)
    count = run_worker(db, stop_event=stop, settings=worker_settings(settings), registry=registry)
    assert count == 1
    states = job_states(db)
    assert states[first].status == JobStatus.succeeded  # finished, not abandoned
    assert states[second].status == JobStatus.queued  # not started after the stop
    assert [e[0] for e in effects(db)] == [first]


def test_the_cleanup_cron_deletes_old_succeeded_jobs_and_ticks(db: Database, registry: Registry, clock) -> None:
    registry.add_handler("t.noop", lambda session, job: None)
    old_done, old_failed, recent_done, queued = enqueue_many(db, registry, "t.noop", 4)
    now = clock.now
    with db.transaction() as s:
        for job_id, status, finished in [
            (old_done, JobStatus.succeeded, now - dt.timedelta(days=8)),
            (old_failed, JobStatus.failed, now - dt.timedelta(days=30)),
            (recent_done, JobStatus.succeeded, now - dt.timedelta(days=6)),
        ]:
            job = s.get(Job, job_id)
            assert job is not None
            job.status, job.finished_at = status, finished
        s.add_all(
            [
                CronTick(name="a", tick_at=now - dt.timedelta(days=9), job_id=old_done),
                CronTick(name="a", tick_at=now - dt.timedelta(days=8)),
                CronTick(name="a", tick_at=now - dt.timedelta(hours=1)),
                CronTick(name="weekly", tick_at=now - dt.timedelta(days=20)),  # its latest: kept
            ]
        )
    for _ in range(2):  # idempotent
        with db.transaction() as s:
            cleanup(s, Job(name="jobs.cleanup"))
    assert sorted(job_states(db)) == sorted([old_failed, recent_done, queued])
    with db.transaction(write=False) as s:
        left = sorted((t.name, t.tick_at) for t in s.scalars(select(CronTick)))
    assert left == [("a", now - dt.timedelta(hours=1)), ("weekly", now - dt.timedelta(days=20))]


def test_the_worker_registers_the_cleanup_cron(db: Database, settings: Settings, clock) -> None:
    run_worker(db, once=True, settings=worker_settings(settings))
    with db.transaction(write=False) as s:
        ticks = {tick.name: s.get(Job, tick.job_id) for tick in s.scalars(select(CronTick))}
    assert {"jobs.cleanup", "usermodel.refresh"} <= ticks.keys()
    assert all(job is not None and job.status == JobStatus.succeeded for job in ticks.values())


# --------------------------------------------------------------------------- concurrency


def test_concurrent_workers_run_every_job_exactly_once(
    db: Database, registry: Registry, settings: Settings, effect_table: None
) -> None:
    """Several worker threads (2 on SQLite, 4 on PostgreSQL) drain one queue: each job runs once."""
    runs: list[tuple[int, str]] = []
    lock = threading.Lock()

    def handler(session: Session, job: Job) -> None:
        record_effect(session, job)  # UNIQUE job_id: a second committed run would fail loudly
        with lock:
            runs.append((job.id, job.locked_by or "?"))

    registry.add_handler("t.race", handler)
    total = 200
    ids = enqueue_many(db, registry, "t.race", total)
    concurrency = 2 if db.sqlite else 4
    worker = Worker(
        db, concurrency=concurrency, worker_id="pool", settings=worker_settings(settings), registry=registry
    )
    assert worker.run(once=True) == total
    assert sorted(job_id for job_id, _ in runs) == ids  # every job ran, none twice
    states = job_states(db)
    assert {s.status for s in states.values()} == {JobStatus.succeeded}
    assert {s.attempts for s in states.values()} == {1}
    assert count_effects(db) == total
    assert len({w for _, w in runs}) >= 1


def test_postgres_claims_never_hand_one_job_to_two_workers(
    db: Database, registry: Registry, effect_table: None
) -> None:
    """Four threads, each with its own connections, claim batches concurrently (SKIP LOCKED) from 1000 jobs."""
    if db.sqlite:
        pytest.skip("SKIP LOCKED claims need PostgreSQL; SQLite has one writer (tested above)")
    registry.add_handler("t.race", record_effect)
    total = 1000
    ids = enqueue_many(db, registry, "t.race", total)
    intervals: dict[int, list[tuple[float, float, str]]] = defaultdict(list)
    claimed_by: dict[str, list[int]] = defaultdict(list)
    lock = threading.Lock()
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker(name: str) -> None:
        try:
            barrier.wait(10)
            while True:
                jobs = claim(db, name, 3, 60, names=["t.race"])
                if not jobs:
                    with db.transaction(write=False) as s:
                        left = s.scalar(select(func.count()).select_from(Job).where(Job.status == JobStatus.queued))
                    if not left:
                        return
                    continue  # the rest is locked by other claimers right now
                for job in jobs:
                    start = time.monotonic()
                    assert run_job(db, job, registry=registry) == JobOutcome.succeeded
                    with lock:
                        claimed_by[name].append(job.id)
                        intervals[job.id].append((start, time.monotonic(), name))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    every_claim = [job_id for batch in claimed_by.values() for job_id in batch]
    assert Counter(every_claim) == Counter(ids)  # each job claimed exactly once
    for job_id, spans in intervals.items():  # and no two holds of one job overlap
        spans.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), (job_id, spans)
    assert sorted(e[0] for e in effects(db)) == ids
    states = job_states(db)
    assert {(s.status, s.attempts) for s in states.values()} == {(JobStatus.succeeded, 1)}
    assert len(claimed_by) > 1, "only one thread got work: the test did not exercise concurrency"


# --------------------------------------------------------------------------- real worker processes


def spawn_worker(database_url: str, tmp_path: Path, worker_id: str, lease: int) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "SIYU_DATABASE_URL": database_url,
        "SIYU_JOB_LEASE_SECONDS": str(lease),
        "SIYU_JOB_POLL_SECONDS": "0.05",
        "SIYU_JOB_MODULES": "jobs_test_handlers",
        "SIYU_SQLITE_SYNCHRONOUS": "NORMAL",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "TEST_WORKER_ID": worker_id,
    }
    return subprocess.Popen(
        [sys.executable, str(HERE / "worker_main.py")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_marker(proc: subprocess.Popen[str], marker: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"worker exited early ({proc.returncode}):\n{out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"handler did not start within {timeout}s:\n{err}")
        time.sleep(0.02)


def test_a_job_whose_worker_is_killed_mid_run_runs_again_after_its_lease(
    db: Database, database_url: str, settings: Settings, tmp_path: Path, effect_table: None
) -> None:
    """SIGKILL a real worker process inside a handler; after the lease, a second worker runs the job once."""
    lease = 3
    marker = tmp_path / "started"
    with db.transaction() as session:
        job = enqueue(session, "test.block_once", {"marker": str(marker)})
        assert job is not None
    proc = spawn_worker(database_url, tmp_path, "doomed", lease)
    try:
        wait_for_marker(proc, marker)  # the handler has written its effect (uncommitted) and hangs
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.communicate()

    state = job_states(db)[job.id]
    assert (state.status, state.locked_by, state.attempts) == (JobStatus.running, "doomed", 1)
    assert state.lease_expires_at is not None
    assert utcnow() < state.lease_expires_at, "machine too slow for this lease: the check below would be vacuous"
    assert claim(db, "probe", 10, lease, names=["test.block_once"]) == []  # still leased
    assert count_effects(db) == 0  # the killed run's write died with it

    wait_for(lambda: utcnow() > state.lease_expires_at, timeout=lease + 5, what="the lease to expire")  # type: ignore[operator]
    ran = run_worker(
        db, once=True, worker_id="second", settings=worker_settings(settings, job_modules="jobs_test_handlers")
    )
    assert ran >= 1
    state = job_states(db)[job.id]
    assert (state.status, state.attempts) == (JobStatus.succeeded, 2)
    assert effects(db) == [(job.id, "second", 2)]  # exactly once


def test_sigterm_lets_a_real_worker_finish_its_job_then_exit(
    db: Database, database_url: str, tmp_path: Path, effect_table: None
) -> None:
    marker = tmp_path / "started"
    with db.transaction() as session:
        job = enqueue(session, "test.slow", {"marker": str(marker), "seconds": 1.0})
        later = enqueue(session, "test.slow", {"marker": str(tmp_path / "later"), "seconds": 0}, delay=dt.timedelta(0))
        assert job is not None and later is not None
    proc = spawn_worker(database_url, tmp_path, "graceful", lease=30)
    try:
        wait_for_marker(proc, marker)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "ran 1 jobs" in out
    states = job_states(db)
    assert states[job.id].status == JobStatus.succeeded  # finished, not abandoned
    assert states[later.id].status == JobStatus.queued  # not started after the signal
    assert effects(db) == [(job.id, "graceful", 1)]


def test_a_poller_with_its_own_thread_keeps_going_while_the_others_take_long_turns(
    db: Database, registry: Registry, settings: Settings
) -> None:
    """Received events must not wait behind a long pipeline turn: an own-thread poller runs beside it."""
    slow_turn_started, slow_turn_may_end = threading.Event(), threading.Event()
    fast_runs: list[str] = []

    def slow(_: Database) -> int:
        slow_turn_started.set()
        slow_turn_may_end.wait(10)
        return 0

    def fast(_: Database) -> int:
        fast_runs.append(threading.current_thread().name)
        return 0

    registry.add_poller("t.slow", slow)
    registry.add_poller("t.fast", fast, own_thread=True)
    assert [name for name, _ in registry.pollers(own_thread=True)] == ["t.fast"]
    assert [name for name, _ in registry.pollers(own_thread=False)] == ["t.slow"]

    worker = Worker(db, worker_id="own", settings=worker_settings(settings), registry=registry)
    runner = threading.Thread(target=worker.run)
    runner.start()
    try:
        assert slow_turn_started.wait(10)
        deadline = time.monotonic() + 10
        while len(fast_runs) < 3:  # several naps of OWN_THREAD_IDLE_SECONDS while the slow turn lasts
            assert time.monotonic() < deadline, fast_runs
            time.sleep(0.01)
        assert set(fast_runs) == {"siyu-poller-t.fast"}
    finally:
        slow_turn_may_end.set()
        worker.stop()
        runner.join(10)
    assert not runner.is_alive()

    # A worker run once (tests, `siyu worker --once`) runs every poller in turn, own-thread ones too.
    fast_runs.clear()
    Worker(db, worker_id="once", settings=worker_settings(settings), registry=registry).run(once=True)
    assert fast_runs == [threading.current_thread().name]
