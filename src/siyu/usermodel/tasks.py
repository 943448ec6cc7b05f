"""Worker wiring: the pipeline runs as a poller (seconds behind the events); a cron does the full pass."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.db import Database
from siyu.jobs.models import Job
from siyu.jobs.registry import cron, poller
from siyu.usermodel import pipeline
from siyu.workspaces.models import Workspace


@poller("usermodel.pipeline")
def run_pipeline(db: Database) -> int:
    return pipeline.run_pending(db)


@cron("usermodel.refresh", every=dt.timedelta(minutes=10))
def refresh_all_workspaces(session: Session, job: Job) -> None:
    """Relative windows ("in the last 7 days", "birthday within 7 days") move with the clock."""
    for workspace_id in session.scalars(select(Workspace.id).order_by(Workspace.id)):
        pipeline.refresh_everything(session, workspace_id)
