"""enqueue / claim / run: outbox semantics, delays, dedupe, retries, dead letters, leases and fencing."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from jobs_fixtures import effect_table_fixture, registry_fixture  # noqa: F401 - pytest fixtures
from jobs_test_handlers import count_effects, effects, record_effect
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.db import Database
from siyu.jobs import (
    JobOutcome,
    LeaseLost,
    Registry,
    UnknownJobError,
    claim,
    enqueue,
    extend_lease,
    heartbeat,
    run_job,
)
from siyu.jobs.models import Job, JobStatus
from siyu.jobs.queue import MAX_ERROR_CHARS
from siyu.workspaces.models import Workspace

LEASE = 30


def noop(session: Session, job: Job) -> None:
    pass


def get_job(db: Database, job_id: int) -> Job:
    with db.transaction(write=False) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def add(db: Database, registry: Registry, name: str = "t.noop", **kwargs: object) -> Job:
    with db.transaction() as session:
        job = enqueue(session, name, {"n": 1}, registry=registry, **kwargs)  # type: ignore[arg-type]
        assert job is not None
        return job


@pytest.fixture
def reg(registry: Registry) -> Registry:
    registry.add_handler("t.noop", noop)
    return registry


def test_enqueue_in_rolled_back_transaction_leaves_no_job(db: Database, reg: Registry, clock) -> None:
    session = db.session()
    try:
        job = enqueue(session, "t.noop", {"a": 1}, registry=reg)
        assert job is not None and job.id is not None  # the row exists inside the transaction ...
        session.rollback()  # ... and goes with it: the outbox pattern
    finally:
        session.close()
    with db.transaction(write=False) as s:
        assert s.scalars(select(Job)).all() == []
    assert claim(db, "w", 10, LEASE) == []


def test_enqueue_never_commits_and_committed_job_is_claimable(db: Database, reg: Registry, clock) -> None:
    with db.transaction() as session:
        session.add(Workspace(name="Acme"))
        session.flush()
        workspace = session.scalars(select(Workspace)).one()
        job = enqueue(session, "t.noop", {"contact_id": 7}, workspace_id=workspace.id, registry=reg)
        assert job is not None
        assert session.in_transaction()
        # visible only to the caller's transaction until it commits
        with db.transaction(write=False) as other:
            assert other.get(Job, job.id) is None
    (claimed,) = claim(db, "w1", 10, LEASE)
    assert claimed.id == job.id
    assert claimed.payload == {"contact_id": 7}
    assert claimed.workspace_id == workspace.id
    assert claimed.status == JobStatus.running
    assert claimed.locked_by == "w1"
    assert claimed.attempts == 1
    assert claimed.lease_expires_at == clock.now + dt.timedelta(seconds=LEASE)
    assert claim(db, "w2", 10, LEASE) == []  # held: nobody else gets it


def test_unknown_job_name_is_refused(db: Database, reg: Registry) -> None:
    with db.transaction() as session, pytest.raises(UnknownJobError, match=r"'t\.typo'.*known: t\.noop"):
        enqueue(session, "t.typo", {}, registry=reg)


def test_run_at_and_delay_are_exclusive(db: Database, reg: Registry, clock) -> None:
    with db.transaction() as session, pytest.raises(ValueError, match="not both"):
        enqueue(session, "t.noop", {}, run_at=clock.now, delay=dt.timedelta(1), registry=reg)


def test_delayed_jobs_are_not_claimed_before_run_at(db: Database, reg: Registry, clock) -> None:
    delayed = add(db, reg, delay=dt.timedelta(minutes=5))
    later = add(db, reg, run_at=clock.now + dt.timedelta(minutes=10))
    assert claim(db, "w", 10, LEASE) == []
    clock.advance(minutes=5)
    (claimed,) = claim(db, "w", 10, LEASE)
    assert claimed.id == delayed.id
    assert run_job(db, claimed, registry=reg) == JobOutcome.succeeded
    clock.advance(minutes=4, seconds=59)
    assert claim(db, "w", 10, LEASE) == []
    clock.advance(seconds=1)
    assert [j.id for j in claim(db, "w", 10, LEASE)] == [later.id]


def test_claim_takes_oldest_due_first_up_to_the_limit(db: Database, reg: Registry, clock) -> None:
    c = add(db, reg, run_at=clock.now - dt.timedelta(minutes=1))
    a = add(db, reg, run_at=clock.now - dt.timedelta(minutes=3))
    b = add(db, reg, run_at=clock.now - dt.timedelta(minutes=2))
    assert [j.id for j in claim(db, "w", 2, LEASE)] == [a.id, b.id]
    assert [j.id for j in claim(db, "w", 2, LEASE)] == [c.id]


def test_claim_only_takes_the_names_a_worker_knows(db: Database, reg: Registry, clock) -> None:
    reg.add_handler("t.other", noop)
    other = add(db, reg, "t.other")
    assert claim(db, "w", 10, LEASE, names=["t.noop"]) == []
    assert [j.id for j in claim(db, "w", 10, LEASE, names=["t.noop", "t.other"])] == [other.id]


def test_dedupe_key_returns_the_pending_job_until_it_has_finished(db: Database, reg: Registry, clock) -> None:
    first = add(db, reg, dedupe_key="recompute:7")
    assert add(db, reg, dedupe_key="recompute:7").id == first.id  # queued: same job
    (claimed,) = claim(db, "w", 10, LEASE)
    assert add(db, reg, dedupe_key="recompute:7").id == first.id  # running: still the same job
    assert add(db, reg, dedupe_key="other").id != first.id
    assert run_job(db, claimed, registry=reg) == JobOutcome.succeeded
    again = add(db, reg, dedupe_key="recompute:7")  # finished: the key is free
    assert again.id != first.id
    with db.transaction(write=False) as s:
        rows = s.scalars(select(Job).where(Job.dedupe_key == "recompute:7").order_by(Job.id)).all()
    assert [(r.id, r.status) for r in rows] == [(first.id, JobStatus.succeeded), (again.id, JobStatus.queued)]


def test_dedupe_hit_does_not_break_the_callers_transaction(db: Database, reg: Registry, clock) -> None:
    first = add(db, reg, dedupe_key="k")
    with db.transaction() as session:
        session.add(Workspace(name="before"))
        job = enqueue(session, "t.noop", {}, dedupe_key="k", registry=reg)
        assert job is not None and job.id == first.id
        session.add(Workspace(name="after"))  # the transaction carries on normally
    with db.transaction(write=False) as s:
        assert sorted(s.scalars(select(Workspace.name))) == ["after", "before"]
        assert len(s.scalars(select(Job)).all()) == 1


@pytest.mark.parametrize("holder_commits", [True, False])
def test_concurrent_enqueue_with_one_dedupe_key(db: Database, reg: Registry, clock, holder_commits: bool) -> None:
    """The second enqueuer waits for the first transaction, then sees its job (or, if it rolled back, adds its own)."""
    holder = db.session()
    held = enqueue(holder, "t.noop", {"who": "holder"}, dedupe_key="k", registry=reg)
    assert held is not None
    result: dict[str, object] = {}

    def second() -> None:
        try:
            with db.transaction() as session:
                job = enqueue(session, "t.noop", {"who": "second"}, dedupe_key="k", registry=reg)
                result["id"] = job.id if job is not None else None
        except BaseException as exc:  # surfaced by the assertion below
            result["error"] = exc

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.3)  # let it reach the INSERT (PostgreSQL) or BEGIN IMMEDIATE (SQLite) and wait there
    assert thread.is_alive(), result
    if holder_commits:
        holder.commit()
    else:
        holder.rollback()
    holder.close()
    thread.join(15)
    assert not thread.is_alive()
    assert "error" not in result, result
    with db.transaction(write=False) as s:
        jobs = s.scalars(select(Job)).all()
    assert len(jobs) == 1
    assert result["id"] == jobs[0].id
    assert jobs[0].payload == {"who": "holder" if holder_commits else "second"}


def test_success_commits_the_handlers_work_with_the_completion(
    db: Database, registry: Registry, clock, effect_table: None
) -> None:
    registry.add_handler("t.effect", record_effect)
    job = add(db, registry, "t.effect")
    (claimed,) = claim(db, "w", 1, LEASE)
    assert run_job(db, claimed, registry=registry) == JobOutcome.succeeded
    assert effects(db) == [(job.id, "w", 1)]
    done = get_job(db, job.id)
    assert done.status == JobStatus.succeeded
    assert done.finished_at == clock.now
    assert done.locked_by is None and done.lease_expires_at is None


def test_retries_with_backoff_then_dead_letter_keeping_the_error(
    db: Database, registry: Registry, clock, effect_table: None
) -> None:
    def explode(session: Session, job: Job) -> None:
        record_effect(session, job)  # rolled back with the failure
        raise ValueError(f"boom on attempt {job.attempts}")

    registry.add_handler("t.explode", explode, max_attempts=3)
    job = add(db, registry, "t.explode")
    # attempt 1 fails -> queued again 2 s later (2**1)
    (claimed,) = claim(db, "w", 1, LEASE)
    assert run_job(db, claimed, registry=registry) == JobOutcome.retrying
    state = get_job(db, job.id)
    assert state.status == JobStatus.queued
    assert state.run_at == clock.now + dt.timedelta(seconds=2)
    assert state.locked_by is None and state.lease_expires_at is None
    assert "ValueError: boom on attempt 1" in (state.last_error or "")
    assert "Traceback" in (state.last_error or "")
    assert claim(db, "w", 1, LEASE) == []
    # attempt 2 fails -> 4 s later (2**2)
    clock.advance(seconds=2)
    (claimed,) = claim(db, "w", 1, LEASE)
    assert claimed.attempts == 2
    assert run_job(db, claimed, registry=registry) == JobOutcome.retrying
    assert get_job(db, job.id).run_at == clock.now + dt.timedelta(seconds=4)
    clock.advance(seconds=3)
    assert claim(db, "w", 1, LEASE) == []
    # attempt 3 fails -> out of attempts: a dead letter
    clock.advance(seconds=1)
    (claimed,) = claim(db, "w", 1, LEASE)
    assert run_job(db, claimed, registry=registry) == JobOutcome.failed
    dead = get_job(db, job.id)
    assert dead.status == JobStatus.failed
    assert dead.attempts == 3
    assert dead.finished_at == clock.now
    assert "ValueError: boom on attempt 3" in (dead.last_error or "")
    clock.advance(days=1)
    assert claim(db, "w", 1, LEASE) == []
    assert count_effects(db) == 0  # no failed attempt left anything behind


def test_custom_backoff_and_max_attempts_override(db: Database, registry: Registry, clock) -> None:
    def fail(session: Session, job: Job) -> None:
        raise RuntimeError("nope")

    registry.add_handler("t.fail", fail, max_attempts=10, retry_backoff=lambda n: dt.timedelta(minutes=n))
    job = add(db, registry, "t.fail", max_attempts=2)
    (claimed,) = claim(db, "w", 1, LEASE)
    assert run_job(db, claimed, registry=registry) == JobOutcome.retrying
    assert get_job(db, job.id).run_at == clock.now + dt.timedelta(minutes=1)
    clock.advance(minutes=1)
    (claimed,) = claim(db, "w", 1, LEASE)
    assert run_job(db, claimed, registry=registry) == JobOutcome.failed  # the job's max_attempts=2 wins


def test_long_tracebacks_are_truncated_keeping_the_end(db: Database, registry: Registry, clock) -> None:
    def verbose(session: Session, job: Job) -> None:
        raise ValueError("x" * 20_000 + " THE END")

    registry.add_handler("t.verbose", verbose, max_attempts=1)
    job = add(db, registry, "t.verbose")
    (claimed,) = claim(db, "w", 1, LEASE)
    assert run_job(db, claimed, registry=registry) == JobOutcome.failed
    error = get_job(db, job.id).last_error or ""
    assert len(error) < MAX_ERROR_CHARS + 100
    assert error.startswith("... [") and error.rstrip().endswith("THE END")


def test_expired_lease_makes_the_job_claimable_again(db: Database, reg: Registry, clock) -> None:
    job = add(db, reg)
    claim(db, "dead-worker", 1, LEASE)
    clock.advance(seconds=LEASE - 1)
    assert claim(db, "w2", 1, LEASE) == []  # still leased
    clock.advance(seconds=2)
    (again,) = claim(db, "w2", 1, LEASE)
    assert (again.id, again.locked_by, again.attempts) == (job.id, "w2", 2)
    assert run_job(db, again, registry=reg) == JobOutcome.succeeded


def test_expired_lease_on_the_last_attempt_is_a_dead_letter(db: Database, reg: Registry, clock) -> None:
    job = add(db, reg, max_attempts=2)
    claim(db, "w1", 1, LEASE)
    clock.advance(seconds=LEASE + 1)
    claim(db, "w2", 1, LEASE)  # attempt 2 of 2; this worker dies too
    clock.advance(seconds=LEASE + 1)
    assert claim(db, "w3", 1, LEASE) == []
    dead = get_job(db, job.id)
    assert dead.status == JobStatus.failed
    assert dead.attempts == 2
    assert dead.locked_by is None
    assert "lease expired while running attempt 2 of 2 on worker w2" in (dead.last_error or "")


def test_lost_lease_rolls_back_the_handlers_work(db: Database, registry: Registry, clock, effect_table: None) -> None:
    """Worker A stalls past its lease; B claims the job; A's fenced completion matches nothing and rolls back."""
    stolen: list[Job] = []

    def stall_then_work(session: Session, job: Job) -> None:
        if job.locked_by == "A":
            # A "stalls": meanwhile its lease expires and B takes the job over
            clock.advance(seconds=LEASE + 1)
            stolen.extend(claim(db, "B", 1, LEASE))
        record_effect(session, job)

    registry.add_handler("t.stall", stall_then_work)
    job = add(db, registry, "t.stall")
    (claimed_by_a,) = claim(db, "A", 1, LEASE)
    assert run_job(db, claimed_by_a, registry=registry) == JobOutcome.lost
    assert count_effects(db) == 0  # A's write was rolled back
    state = get_job(db, job.id)
    assert (state.status, state.locked_by, state.attempts) == (JobStatus.running, "B", 2)
    (claimed_by_b,) = stolen
    assert run_job(db, claimed_by_b, registry=registry) == JobOutcome.succeeded
    assert effects(db) == [(job.id, "B", 2)]  # exactly once


def test_a_failure_after_losing_the_lease_does_not_touch_the_new_owners_job(
    db: Database, registry: Registry, clock
) -> None:
    def stall_then_fail(session: Session, job: Job) -> None:
        clock.advance(seconds=LEASE + 1)
        claim(db, "B", 1, LEASE)
        raise RuntimeError("A failed late")

    registry.add_handler("t.late", stall_then_fail)
    job = add(db, registry, "t.late")
    (claimed,) = claim(db, "A", 1, LEASE)
    assert run_job(db, claimed, registry=registry) == JobOutcome.lost
    state = get_job(db, job.id)
    assert (state.status, state.locked_by, state.last_error) == (JobStatus.running, "B", None)


def test_heartbeat_raises_lease_lost_once_taken_over(
    db: Database, registry: Registry, clock, effect_table: None
) -> None:
    def slow(session: Session, job: Job) -> None:
        clock.advance(seconds=LEASE + 1)
        claim(db, "B", 1, LEASE)
        heartbeat(session, job)  # raises: no point carrying on
        record_effect(session, job)

    registry.add_handler("t.slow", slow)
    add(db, registry, "t.slow")
    (claimed,) = claim(db, "A", 1, LEASE)
    assert run_job(db, claimed, registry=registry) == JobOutcome.lost
    assert count_effects(db) == 0


def test_heartbeat_keeps_the_lease(db: Database, registry: Registry, clock, effect_table: None) -> None:
    def long_running(session: Session, job: Job) -> None:
        for _ in range(3):
            clock.advance(seconds=LEASE - 5)  # a long step, shorter than the lease
            heartbeat(session, job)
            if not db.sqlite:
                # PostgreSQL: the extension is committed at once, so other workers see it
                assert get_job(db, job.id).lease_expires_at == clock.now + dt.timedelta(seconds=LEASE)
                assert claim(db, "B", 1, LEASE) == []
        record_effect(session, job)

    registry.add_handler("t.long", long_running)
    job = add(db, registry, "t.long")
    (claimed,) = claim(db, "A", 1, LEASE)
    assert run_job(db, claimed, registry=registry, lease_seconds=LEASE) == JobOutcome.succeeded
    assert effects(db) == [(job.id, "A", 1)]


def test_extend_lease_is_fenced(db: Database, reg: Registry, clock) -> None:
    add(db, reg)
    (mine,) = claim(db, "A", 1, LEASE)
    assert extend_lease(db, mine, 600)
    clock.advance(seconds=LEASE + 1)
    assert claim(db, "B", 1, LEASE) == []  # extended: not expired
    clock.advance(seconds=600)
    (theirs,) = claim(db, "B", 1, LEASE)
    assert not extend_lease(db, mine, 600)  # A's attempt is over
    assert extend_lease(db, theirs, 600)


def test_heartbeat_outside_a_handler_is_an_error(db: Database, reg: Registry, clock) -> None:
    add(db, reg)
    (job,) = claim(db, "A", 1, LEASE)
    with db.transaction() as session, pytest.raises(RuntimeError, match="inside a running job"):
        heartbeat(session, job)


def test_a_job_without_a_handler_in_this_worker_is_retried(db: Database, reg: Registry, clock) -> None:
    job = add(db, reg)
    (claimed,) = claim(db, "w", 1, LEASE)
    assert run_job(db, claimed, registry=Registry()) == JobOutcome.retrying
    state = get_job(db, job.id)
    assert state.status == JobStatus.queued
    assert "no job handler named 't.noop'" in (state.last_error or "")


def test_lease_lost_raised_by_a_handler_is_not_a_failure(db: Database, registry: Registry, clock) -> None:
    def give_up(session: Session, job: Job) -> None:
        raise LeaseLost("gone")

    registry.add_handler("t.gone", give_up)
    job = add(db, registry, "t.gone")
    (claimed,) = claim(db, "A", 1, LEASE)
    assert run_job(db, claimed, registry=registry) == JobOutcome.lost
    assert get_job(db, job.id).status == JobStatus.running  # left to expire and be claimed again
