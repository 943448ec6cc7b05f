"""Enqueue, claim, run, retry and cron: the job queue's moving parts, on SQLite and PostgreSQL.

Lifecycle of a `job` row:

    queued --claim--> running --handler ok, fenced completion--> succeeded
                         |  \\--handler raised--> queued (run_at = now + backoff) ... or failed
                         \\--lease expired--> claimable again, or failed if attempts reached max

Delivery is at-least-once, so handlers are idempotent (see `siyu.jobs.registry`). Every time
comparison uses `siyu.kit.time.utcnow()` from the process, not the database's `now()`, so that
tests can move one clock; hosts running workers need synchronised clocks (NTP), which a lease
measured in tens of seconds tolerates.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import traceback
from collections.abc import Collection, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, Update, and_, cast, literal, or_, select, update
from sqlalchemy.orm import Session

from siyu.db import Database
from siyu.jobs.models import CronTick, Job, JobStatus
from siyu.jobs.registry import Backoff, Registry, UnknownJobError, backoff_seconds, default_backoff
from siyu.jobs.registry import registry as default_registry
from siyu.kit.sql import dialect_insert
from siyu.kit.time import utcnow

log = logging.getLogger("siyu.jobs")

PENDING = (JobStatus.queued, JobStatus.running)
MAX_ERROR_CHARS = 8000  # tracebacks are kept for diagnosis, not forever-growing


class JobOutcome(enum.StrEnum):
    succeeded = "succeeded"
    retrying = "retrying"  # failed this time, queued again after a backoff
    failed = "failed"  # failed and out of attempts: a dead letter
    lost = "lost"  # the lease went to another worker: this run's work was rolled back


class LeaseLost(Exception):
    """Raised by `heartbeat` when another worker has taken the job over; the runner rolls back."""


# --------------------------------------------------------------------------- enqueue


def enqueue(
    session: Session,
    name: str,
    payload: dict[str, Any] | None = None,
    *,
    workspace_id: int | None = None,
    run_at: dt.datetime | None = None,
    delay: dt.timedelta | None = None,
    dedupe_key: str | None = None,
    max_attempts: int | None = None,
    registry: Registry | None = None,
) -> Job | None:
    """Add a job in the caller's transaction (outbox): it exists if, and only if, the caller commits.

    Never commits. With a `dedupe_key` already held by a queued or running job, that job is returned
    and nothing is added; once it has finished the key is free again. Returns None only if the key
    is held by a job this transaction cannot see (e.g. under REPEATABLE READ on PostgreSQL).
    Raises UnknownJobError for a name no handler is registered for - a typo here would otherwise
    only show up as a dead letter much later.
    """
    spec = (registry or default_registry).get(name)
    if run_at is not None and delay is not None:
        raise ValueError("enqueue: give run_at or delay, not both")
    if max_attempts is not None and max_attempts < 1:
        raise ValueError(f"enqueue: max_attempts must be at least 1, got {max_attempts}")
    now = utcnow()
    when = run_at if run_at is not None else now + (delay or dt.timedelta(0))
    values: dict[str, Any] = {
        "workspace_id": workspace_id,
        "name": name,
        "payload": payload if payload is not None else {},
        "status": JobStatus.queued,
        "run_at": when,
        "attempts": 0,
        "max_attempts": max_attempts if max_attempts is not None else spec.max_attempts,
        "dedupe_key": dedupe_key,
        "created_at": now,
    }
    # An ORM-enabled INSERT ... RETURNING gives back a Job in the caller's session, and autoflushes
    # the caller's pending rows first (e.g. the workspace this job points at).
    insert = dialect_insert(session)
    if dedupe_key is None:
        added: Job = session.scalars(insert(Job).values(**values).returning(Job)).one()
        return added
    # ON CONFLICT DO NOTHING, not a caught IntegrityError: a failed statement would abort the caller's
    # whole PostgreSQL transaction, and it needs no SAVEPOINT. On PostgreSQL a conflicting row from an
    # uncommitted transaction makes the INSERT wait for it: if it commits we do nothing and then see
    # it (READ COMMITTED takes a fresh snapshot per statement); if it rolls back, our row goes in.
    stmt = insert(Job).values(**values).on_conflict_do_nothing().returning(Job)
    for _ in range(3):
        job: Job | None = session.scalars(stmt).one_or_none()
        if job is not None:
            return job
        existing = session.scalars(
            select(Job)
            .where(Job.dedupe_key == dedupe_key, Job.status.in_(PENDING))
            .execution_options(populate_existing=True)
        ).first()
        if existing is not None:
            return existing
        # the holder finished between our INSERT and SELECT: the key is free, try again
    return None


# --------------------------------------------------------------------------- claim


def claim(
    db: Database,
    worker_id: str,
    limit: int,
    lease_seconds: float,
    *,
    names: Collection[str] | None = None,
    now: dt.datetime | None = None,
) -> list[Job]:
    """Take up to `limit` due jobs for `worker_id` for `lease_seconds`, in one short transaction.

    Due means queued with run_at <= now, or running with an expired lease (its worker died or
    stalled). Each claim counts as an attempt. A job whose lease expired on its last allowed attempt
    is marked failed instead of being run again. `names` restricts the claim to jobs this worker has
    handlers for, so a worker from an older deploy leaves newer kinds of job alone.
    Returned jobs are detached from any session; their `locked_by` and `attempts` fence the run.
    """
    if limit < 1:
        return []
    now = now or utcnow()
    lease_until = now + dt.timedelta(seconds=lease_seconds)
    expired = and_(Job.status == JobStatus.running, Job.lease_expires_at < now)
    name_filter = [Job.name.in_(list(names))] if names is not None else []
    with db.transaction() as session:
        postgres = not db.sqlite
        _dead_letter_expired(session, expired, now, postgres=postgres)
        due = (
            select(Job.id)
            .where(
                or_(
                    and_(Job.status == JobStatus.queued, Job.run_at <= now),
                    and_(expired, Job.attempts < Job.max_attempts),
                ),
                *name_filter,
            )
            .order_by(Job.run_at, Job.id)
            .limit(limit)
        )
        claim_values = {
            "status": JobStatus.running,
            "locked_by": worker_id,
            "lease_expires_at": lease_until,
            "attempts": Job.attempts + 1,
        }
        if postgres:
            # SKIP LOCKED: concurrent claimers pass over rows another claimer has locked instead of
            # queueing behind it, so N workers take N different jobs. The picked ids live in a
            # MATERIALIZED CTE because `id IN (subquery ... LIMIT n FOR UPDATE SKIP LOCKED)` may be
            # re-evaluated by the planner and then lock and update more than n rows.
            picked = due.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
            stmt = update(Job).where(Job.id == picked.c.id)
        else:
            # SQLite: this write session began with BEGIN IMMEDIATE, so we are the only writer until
            # commit and a plain subquery cannot race with another claimer.
            stmt = update(Job).where(Job.id.in_(due.scalar_subquery()))
        jobs = list(
            session.scalars(
                stmt.values(**claim_values)
                .returning(Job)
                .execution_options(synchronize_session=False, populate_existing=True)
            )
        )
        session.expunge_all()
    jobs.sort(key=lambda job: (job.run_at, job.id))
    return jobs


def _dead_letter_expired(session: Session, expired: Any, now: dt.datetime, *, postgres: bool) -> None:
    """Jobs whose lease expired on their last allowed attempt are given up, not run once more."""
    victims = select(Job.id).where(expired, Job.attempts >= Job.max_attempts)
    if postgres:
        # rows being completed by their (slow but alive) worker are locked: leave them to it
        victims = victims.with_for_update(skip_locked=True)
    message = (
        literal("lease expired while running attempt ")
        + cast(Job.attempts, String)
        + literal(" of ")
        + cast(Job.max_attempts, String)
        + literal(" on worker ")
        + Job.locked_by
        + literal(" (it died or stalled); out of attempts")
    )
    session.execute(
        update(Job)
        .where(Job.id.in_(victims.scalar_subquery()))
        .values(
            status=JobStatus.failed,
            finished_at=now,
            locked_by=None,
            lease_expires_at=None,
            last_error=message,
        )
        .execution_options(synchronize_session=False)
    )


# --------------------------------------------------------------------------- run


@dataclass(frozen=True)
class _RunContext:
    db: Database
    job_id: int
    worker_id: str
    attempts: int
    lease_seconds: float


_current_run: ContextVar[_RunContext | None] = ContextVar("siyu_job_run", default=None)


def _fenced(job_id: int, worker_id: str, attempts: int) -> Update:
    """An UPDATE that only touches the job while this worker still holds this attempt's lease.

    A worker whose lease expired and was re-claimed by another worker sees `locked_by`/`attempts`
    changed and matches no row, so it cannot complete (or fail) a run that is no longer its own.
    """
    return (
        update(Job)
        .where(
            Job.id == job_id,
            Job.locked_by == worker_id,
            Job.attempts == attempts,
            Job.status == JobStatus.running,
        )
        .execution_options(synchronize_session=False)
    )


def run_job(
    db: Database,
    job: Job,
    *,
    worker_id: str | None = None,
    registry: Registry | None = None,
    lease_seconds: float = 60.0,
) -> JobOutcome:
    """Run a claimed job. The handler's writes and the job's completion commit as ONE transaction.

    If the fenced completion matches no row (our lease was lost to another worker), the handler's
    work is rolled back: the other worker's run is the one that counts. If the handler raises, its
    work is rolled back and, in a new transaction, the job is queued again after a backoff with the
    traceback in `last_error` - or marked failed once it has used up max_attempts.
    `lease_seconds` is what `heartbeat()` extends the lease by.
    """
    worker = worker_id or job.locked_by
    if worker is None:
        raise ValueError("run_job: the job is not claimed (no locked_by); claim() it first")
    try:
        spec = (registry or default_registry).get(job.name)
    except UnknownJobError as exc:
        # claimed by a worker without this handler (claim without `names`): retry later, maybe elsewhere
        return _record_failure(db, job, worker, str(exc), default_backoff)
    session = db.session()
    token = _current_run.set(_RunContext(db, job.id, worker, job.attempts, lease_seconds))
    try:
        try:
            spec.func(session, job)
            done = session.execute(
                _fenced(job.id, worker, job.attempts)
                .values(
                    status=JobStatus.succeeded,
                    finished_at=utcnow(),
                    locked_by=None,
                    lease_expires_at=None,
                    last_error=None,
                )
                .returning(Job.id)
            ).first()
            if done is None:
                session.rollback()
                log.warning("job %s (%s) lost its lease on %s; its work was rolled back", job.id, job.name, worker)
                return JobOutcome.lost
            session.commit()
            return JobOutcome.succeeded
        except LeaseLost:
            session.rollback()
            log.warning("job %s (%s) lost its lease on %s mid-run; rolled back", job.id, job.name, worker)
            return JobOutcome.lost
        except Exception:
            error = traceback.format_exc()
            session.rollback()
            log.warning("job %s (%s) attempt %s failed", job.id, job.name, job.attempts, exc_info=True)
    finally:
        _current_run.reset(token)
        session.close()  # on BaseException (e.g. KeyboardInterrupt) this rolls back; the lease expires
    return _record_failure(db, job, worker, error, spec.retry_backoff)


def _truncate(error: str) -> str:
    if len(error) <= MAX_ERROR_CHARS:
        return error
    # keep the end: the exception and the innermost frames are what explain a failure
    return f"... [{len(error) - MAX_ERROR_CHARS} characters cut] ...\n" + error[-MAX_ERROR_CHARS:]


def _record_failure(db: Database, job: Job, worker_id: str, error: str, backoff: Backoff) -> JobOutcome:
    now = utcnow()
    give_up = job.attempts >= job.max_attempts
    values: dict[str, Any] = {"locked_by": None, "lease_expires_at": None, "last_error": _truncate(error)}
    if give_up:
        values.update(status=JobStatus.failed, finished_at=now)
    else:
        wait = dt.timedelta(seconds=backoff_seconds(backoff, job.attempts))
        values.update(status=JobStatus.queued, run_at=now + wait)
    with db.transaction() as session:
        row = session.execute(_fenced(job.id, worker_id, job.attempts).values(**values).returning(Job.id)).first()
    if row is None:
        return JobOutcome.lost
    if give_up:
        log.error("job %s (%s) failed after %s attempts; kept as a dead letter", job.id, job.name, job.attempts)
        return JobOutcome.failed
    return JobOutcome.retrying


def extend_lease(db: Database, job: Job, seconds: float, *, worker_id: str | None = None) -> bool:
    """Push the lease of a job we hold to now + seconds, in its own short transaction.

    Returns False if the job is no longer ours (the lease expired and another worker claimed it, or
    it was dead-lettered): the caller should stop and let its transaction roll back.
    """
    worker = worker_id or job.locked_by
    if worker is None:
        return False
    with db.transaction() as session:
        row = session.execute(
            _fenced(job.id, worker, job.attempts)
            .values(lease_expires_at=utcnow() + dt.timedelta(seconds=seconds))
            .returning(Job.id)
        ).first()
    return row is not None


def heartbeat(session: Session, job: Job, seconds: float | None = None) -> None:
    """For long handlers: call now and then to keep the lease; raises LeaseLost if it is gone.

    PostgreSQL: the lease is extended in a separate transaction, so other workers see it at once.
    SQLite: the handler's own session takes the database's single write lock (if it has not yet),
    and while it is held no other worker can claim anything, so the lease cannot be lost until this
    job commits; here we just check that it is still ours. Do slow non-database work (HTTP calls)
    before the first query on SQLite: every writer waits while the lock is held.
    """
    run = _current_run.get()
    if run is None or run.job_id != job.id:
        raise RuntimeError("heartbeat() is for use inside a running job handler")
    lease = run.lease_seconds if seconds is None else seconds
    if run.db.sqlite:
        held = session.execute(
            _fenced(job.id, run.worker_id, run.attempts)
            .values(lease_expires_at=utcnow() + dt.timedelta(seconds=lease))
            .returning(Job.id)
        ).first()
        ok = held is not None
    else:
        ok = extend_lease(run.db, job, lease, worker_id=run.worker_id)
    if not ok:
        raise LeaseLost(f"job {job.id} ({job.name}) was taken over by another worker")


# --------------------------------------------------------------------------- cron


def fire_due_cron(
    db: Database,
    now: dt.datetime | None = None,
    *,
    registry: Registry | None = None,
    known: MutableMapping[str, dt.datetime] | None = None,
) -> list[CronTick]:
    """Fire the latest due tick of every cron schedule that has not fired yet; return the new ticks.

    Each firing inserts a `cron_tick` row, unique on (name, tick_at), and enqueues the job in the
    same transaction. A worker that finds the tick already there (ON CONFLICT DO NOTHING, the
    IntegrityError-free spelling of "another worker fired it") skips it: one firing however many
    workers run. Missed ticks are not replayed; only the latest is fired. The job carries the dedupe
    key "cron:<name>", so a run still pending absorbs the next tick instead of piling up.
    `known` (name -> tick) is a per-worker cache so a worker does not re-check a tick it has seen.
    """
    reg = registry or default_registry
    now = now or utcnow()
    due = {schedule.name: (schedule, schedule.latest_tick(now)) for schedule in reg.schedules()}
    if known is not None:
        due = {name: item for name, item in due.items() if known.get(name) != item[1]}
    if not due:
        return []
    # A read first: on SQLite a write transaction per poll would take the write lock every second.
    with db.transaction(write=False) as session:
        seen = {
            (name, tick_at)
            for name, tick_at in session.execute(
                select(CronTick.name, CronTick.tick_at).where(
                    CronTick.name.in_(list(due)), CronTick.tick_at.in_({tick for _, tick in due.values()})
                )
            )
        }
    fired: list[CronTick] = []
    for name, (schedule, tick_at) in due.items():
        if (name, tick_at) not in seen:
            try:
                tick = _fire(db, reg, schedule.name, schedule.job, schedule.payload, tick_at, now)
            except Exception:
                log.exception("cron %s: firing tick %s failed", name, tick_at.isoformat())
                continue
            if tick is not None:
                fired.append(tick)
        if known is not None:
            known[name] = tick_at
    return fired


def _fire(
    db: Database,
    reg: Registry,
    name: str,
    job_name: str,
    payload: dict[str, Any],
    tick_at: dt.datetime,
    now: dt.datetime,
) -> CronTick | None:
    with db.transaction() as session:
        insert = dialect_insert(session)
        tick: CronTick | None = session.scalars(
            insert(CronTick)
            .values(name=name, tick_at=tick_at, created_at=now)
            .on_conflict_do_nothing()
            .returning(CronTick)
        ).one_or_none()
        if tick is None:
            return None  # another worker fired this tick
        job = enqueue(session, job_name, dict(payload), dedupe_key=f"cron:{name}", registry=reg)
        tick.job_id = job.id if job is not None else None
    log.info("cron %s fired for %s", name, tick_at.isoformat())
    return tick


__all__ = [
    "JobOutcome",
    "LeaseLost",
    "claim",
    "enqueue",
    "extend_lease",
    "fire_due_cron",
    "heartbeat",
    "run_job",
]
