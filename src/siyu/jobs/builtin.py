"""Jobs the queue needs for itself. Imported by the worker (`siyu.jobs.worker.load_job_modules`)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, exists
from sqlalchemy.orm import Session, aliased

from siyu.jobs.models import CronTick, Job, JobStatus
from siyu.jobs.registry import cron
from siyu.kit.time import utcnow

RETENTION = dt.timedelta(days=7)


@cron("jobs.cleanup", every=dt.timedelta(hours=1))
def cleanup(session: Session, job: Job) -> None:
    """Delete succeeded jobs and old cron ticks older than RETENTION, so the tables do not grow forever.

    Failed jobs are dead letters and stay until someone looks at them. The newest tick of each
    schedule is kept whatever its age: it is what tells workers that tick has fired. Idempotent: a
    second run deletes nothing more.
    """
    cutoff = utcnow() - RETENTION
    session.execute(
        delete(Job)
        .where(Job.status == JobStatus.succeeded, Job.finished_at < cutoff)
        .execution_options(synchronize_session=False)
    )
    newer = aliased(CronTick)
    session.execute(
        delete(CronTick)
        .where(
            CronTick.tick_at < cutoff,
            exists().where(newer.name == CronTick.name, newer.tick_at > CronTick.tick_at),
        )
        .execution_options(synchronize_session=False)
    )
