"""Worker wiring of journeys: the trigger poller (events, tag changes, goals, awaited events), the runner
poller (due enrolments, in batches) and a cron job firing date and schedule triggers every minute."""

from __future__ import annotations

from sqlalchemy.orm import Session

from siyu.db import Database
from siyu.jobs.models import Job
from siyu.jobs.registry import cron, poller
from siyu.journeys import runner, triggers


@poller("journeys.triggers")
def poll_triggers(db: Database) -> int:
    return triggers.poll(db)


@poller("journeys.runner")
def poll_runner(db: Database) -> int:
    return runner.run_pending(db)


@cron("journeys.schedules", every="*")
def fire_schedules(session: Session, job: Job) -> None:
    """Date triggers ("3 days before the birthday at 10:00") and schedules ("0 8 * * 1-5") whose time has come."""
    triggers.fire_due(session)
