"""Scoring jobs. The worker imports this module (listed in siyu.jobs.worker.load_job_modules).

- `scoring.refresh`, hourly at :07: a full recompute of every workspace, so that what only time changes
  (at risk, churned, recency, intention decay) stays true, and the RFM cut points follow the population.
- `scoring.recompute` {}: a full recompute of the job's workspace, enqueued when its settings change.
Both are idempotent: a run replaces each contact's row as a whole.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.jobs import cron, heartbeat, job_handler
from siyu.jobs.models import Job
from siyu.kit.time import utcnow
from siyu.scoring.service import RECOMPUTE_JOB, REFRESH_CRON, recompute
from siyu.workspaces.models import Workspace


@cron(REFRESH_CRON, every="7")
def refresh_all(session: Session, job: Job) -> None:
    for workspace_id in list(session.scalars(select(Workspace.id).order_by(Workspace.id))):
        recompute(session, workspace_id, contact_ids=None, now=utcnow())
        heartbeat(session, job)


@job_handler(RECOMPUTE_JOB, max_attempts=3)
def recompute_workspace(session: Session, job: Job) -> None:
    if job.workspace_id is None:
        return
    if session.get(Workspace, job.workspace_id) is None:
        return  # deleted since it was enqueued
    recompute(session, job.workspace_id, contact_ids=None, now=utcnow())
