"""Job handlers for the worker-process tests, registered in the global registry.

The worker subprocess imports this module through SIYU_JOB_MODULES=jobs_test_handlers (with this
directory on PYTHONPATH), exactly as production workers import their handler modules.
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.orm import Session

from siyu.db import Database
from siyu.jobs import job_handler
from siyu.jobs.models import Job

effect_metadata = MetaData()

# What a handler did, one row per job: the UNIQUE job_id makes a second committed run impossible to miss.
effect = Table(
    "job_test_effect",
    effect_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", BigInteger, nullable=False, unique=True),
    Column("worker", String(100), nullable=False),
    Column("attempt", Integer, nullable=False),
)


def record_effect(session: Session, job: Job) -> None:
    session.execute(insert(effect).values(job_id=job.id, worker=job.locked_by or "?", attempt=job.attempts))


@job_handler("test.block_once", max_attempts=3)
def block_once(session: Session, job: Job) -> None:
    """First attempt: write the effect (uncommitted), tell the test via a marker file, then hang until killed."""
    record_effect(session, job)
    if job.attempts == 1:
        Path(job.payload["marker"]).write_text(str(job.id))
        time.sleep(600)


@job_handler("test.slow")
def slow(session: Session, job: Job) -> None:
    """Write the effect, tell the test it started, then take a while (so a SIGTERM arrives mid-run)."""
    record_effect(session, job)
    Path(job.payload["marker"]).write_text(str(job.id))
    time.sleep(float(job.payload["seconds"]))


def effects(db: Database) -> list[tuple[int, str, int]]:
    """(job_id, worker, attempt) of every committed effect, in insertion order."""
    with db.transaction(write=False) as session:
        rows = session.execute(select(effect.c.job_id, effect.c.worker, effect.c.attempt).order_by(effect.c.id))
        return [(r.job_id, r.worker, r.attempt) for r in rows]


def count_effects(db: Database) -> int:
    with db.transaction(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(effect)) or 0)
