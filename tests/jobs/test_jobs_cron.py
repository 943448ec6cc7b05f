"""Cron: epoch-aligned ticks, each fired once however many workers call fire_due_cron at once."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from jobs_fixtures import registry_fixture  # noqa: F401 - pytest fixtures
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.db import Database
from siyu.jobs import JobOutcome, Registry, claim, cron, fire_due_cron, run_job
from siyu.jobs.models import CronTick, Job, JobStatus
from siyu.jobs.registry import JobRegistryError, parse_every

UTC = dt.UTC


def noop(session: Session, job: Job) -> None:
    pass


def ticks(db: Database) -> list[tuple[str, dt.datetime, int | None]]:
    with db.transaction(write=False) as s:
        return [
            (t.name, t.tick_at, t.job_id) for t in s.scalars(select(CronTick).order_by(CronTick.tick_at, CronTick.name))
        ]


def jobs(db: Database) -> list[Job]:
    with db.transaction(write=False) as s:
        return list(s.scalars(select(Job).order_by(Job.id)))


@pytest.mark.parametrize(
    ("every", "interval", "offset"),
    [
        (dt.timedelta(minutes=5), dt.timedelta(minutes=5), dt.timedelta(0)),
        ("*/5", dt.timedelta(minutes=5), dt.timedelta(0)),
        ("*/15 * * * *", dt.timedelta(minutes=15), dt.timedelta(0)),
        ("*", dt.timedelta(minutes=1), dt.timedelta(0)),
        ("30 * * * *", dt.timedelta(hours=1), dt.timedelta(minutes=30)),
    ],
)
def test_schedule_specs(every: dt.timedelta | str, interval: dt.timedelta, offset: dt.timedelta) -> None:
    assert parse_every(every) == (interval, offset)


@pytest.mark.parametrize("spec", ["*/7", "0 3 * * *", "61", "every hour", "", dt.timedelta(0)])
def test_schedule_specs_we_do_not_understand_are_refused(spec: dt.timedelta | str) -> None:
    with pytest.raises(JobRegistryError):
        parse_every(spec)


def test_ticks_are_aligned_to_the_epoch(registry: Registry) -> None:
    every5 = registry.add_schedule("five", dt.timedelta(minutes=5), job="x")
    half_past = registry.add_schedule("half", "30", job="x")
    now = dt.datetime(2026, 11, 23, 2, 7, 31, tzinfo=UTC)
    assert every5.latest_tick(now) == dt.datetime(2026, 11, 23, 2, 5, tzinfo=UTC)
    assert every5.latest_tick(dt.datetime(2026, 11, 23, 2, 5, tzinfo=UTC)) == dt.datetime(
        2026, 11, 23, 2, 5, tzinfo=UTC
    )
    assert every5.next_tick(now) == dt.datetime(2026, 11, 23, 2, 10, tzinfo=UTC)
    assert half_past.latest_tick(now) == dt.datetime(2026, 11, 23, 1, 30, tzinfo=UTC)
    other_tz = now.astimezone(dt.timezone(dt.timedelta(hours=8)))
    assert every5.latest_tick(other_tz) == every5.latest_tick(now)


def test_cron_decorator_registers_handler_and_schedule(registry: Registry) -> None:
    @cron("t.tick", every="*/5", payload={"a": 1}, registry=registry)
    def tick(session: Session, job: Job) -> None:
        pass

    assert "t.tick" in registry
    (schedule,) = registry.schedules()
    assert (schedule.name, schedule.job, schedule.payload) == ("t.tick", "t.tick", {"a": 1})


def test_a_tick_fires_once_and_enqueues_its_job(db: Database, registry: Registry, clock) -> None:
    registry.add_handler("t.tick", noop)
    registry.add_schedule("t.tick", dt.timedelta(minutes=5), payload={"kind": "tick"})
    clock.advance(minutes=2)  # 02:02: the latest tick is 02:00
    (fired,) = fire_due_cron(db, registry=registry)
    assert fired.tick_at == dt.datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    assert fire_due_cron(db, registry=registry) == []  # same tick: already fired
    clock.advance(minutes=2, seconds=59)
    assert fire_due_cron(db, registry=registry) == []
    (job,) = jobs(db)
    assert (job.name, job.payload, job.dedupe_key) == ("t.tick", {"kind": "tick"}, "cron:t.tick")
    assert ticks(db) == [("t.tick", fired.tick_at, job.id)]
    # next tick at 02:05; the previous run has finished, so a new job is enqueued
    (claimed,) = claim(db, "w", 1, 60)
    assert run_job(db, claimed, registry=registry) == JobOutcome.succeeded
    clock.advance(seconds=1)
    (fired2,) = fire_due_cron(db, registry=registry)
    assert fired2.tick_at == dt.datetime(2026, 11, 23, 2, 5, tzinfo=UTC)
    assert [j.status for j in jobs(db)] == [JobStatus.succeeded, JobStatus.queued]


def test_a_pending_run_absorbs_the_next_tick(db: Database, registry: Registry, clock) -> None:
    """If the previous run has not finished, the tick is recorded but no second job piles up."""
    registry.add_handler("t.tick", noop)
    registry.add_schedule("t.tick", dt.timedelta(minutes=1))
    fire_due_cron(db, registry=registry)
    clock.advance(minutes=1)
    fire_due_cron(db, registry=registry)
    (job,) = jobs(db)
    assert [t[2] for t in ticks(db)] == [job.id, job.id]


def test_missed_ticks_are_not_replayed(db: Database, registry: Registry, clock) -> None:
    registry.add_handler("t.tick", noop)
    registry.add_schedule("t.tick", dt.timedelta(minutes=1))
    fire_due_cron(db, registry=registry)
    clock.advance(hours=3, seconds=30)  # the workers were down for 3 hours
    (fired,) = fire_due_cron(db, registry=registry)
    assert fired.tick_at == dt.datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
    assert len(ticks(db)) == 2


def test_known_cache_skips_ticks_already_seen(db: Database, registry: Registry, clock) -> None:
    registry.add_handler("t.tick", noop)
    registry.add_schedule("t.tick", dt.timedelta(minutes=1))
    known: dict[str, dt.datetime] = {}
    assert len(fire_due_cron(db, registry=registry, known=known)) == 1
    assert known == {"t.tick": clock.now}
    assert fire_due_cron(db, registry=registry, known=known) == []


def test_a_broken_schedule_does_not_stop_the_others(db: Database, registry: Registry, clock) -> None:
    registry.add_handler("t.ok", noop)
    registry.add_schedule("a.broken", dt.timedelta(minutes=1), job="t.not-registered")
    registry.add_schedule("t.ok", dt.timedelta(minutes=1))
    (fired,) = fire_due_cron(db, registry=registry)
    assert fired.name == "t.ok"
    assert [t[0] for t in ticks(db)] == ["t.ok"]  # the broken one's tick rolled back: it retries next time


def test_ticks_fire_once_with_many_workers_at_once(db: Database, registry: Registry, clock) -> None:
    """Eight workers call fire_due_cron for the same moment, five ticks in a row: each tick fires once."""
    registry.add_handler("t.a", noop)
    registry.add_handler("t.b", noop)
    registry.add_schedule("t.a", dt.timedelta(minutes=1))
    registry.add_schedule("t.b", "*/2")
    workers = 8
    rounds = 5
    fired: list[tuple[str, dt.datetime]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    for _ in range(rounds):
        barrier = threading.Barrier(workers)
        now = clock.now

        def worker(now: dt.datetime = now, barrier: threading.Barrier = barrier) -> None:
            try:
                barrier.wait(10)
                for _ in range(3):  # and again, for the same tick
                    got = fire_due_cron(db, now, registry=registry)
                    with lock:
                        fired.extend((t.name, t.tick_at) for t in got)
            except BaseException as exc:
                with lock:
                    errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads)
        assert errors == []
        # run what was enqueued, so the next tick enqueues afresh
        for job in claim(db, "runner", 10, 60):
            assert run_job(db, job, registry=registry) == JobOutcome.succeeded
        clock.advance(minutes=1)

    expected_a = rounds  # 02:00 .. 02:04
    expected_b = 3  # 02:00, 02:02, 02:04
    assert len(fired) == len(set(fired)) == expected_a + expected_b
    rows = ticks(db)
    assert len(rows) == len({(n, t) for n, t, _ in rows}) == expected_a + expected_b
    assert sorted(n for n, _, _ in rows) == ["t.a"] * expected_a + ["t.b"] * expected_b
    with db.transaction(write=False) as s:
        assert s.scalar(select(func.count()).select_from(Job)) == expected_a + expected_b
    # every tick points at its own job
    assert len({job_id for _, _, job_id in rows}) == expected_a + expected_b
