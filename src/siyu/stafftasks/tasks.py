"""Worker wiring of stafftasks (imported by every worker).

- poller `stafftasks.unanswered`: reads the event stream after its cursor (messages received and
  sent) and turns messages waiting longer than the SLA into tasks; a reply closes them.
- cron `stafftasks.daily`, every 10 minutes: each workspace's follow-ups and birthday tasks, once per
  local day (soon after local midnight).
- cron `stafftasks.escalate`, every 5 minutes: overdue tasks go to the owner's lead.
All are idempotent: source keys make a second run add nothing.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.db import Database
from siyu.jobs import heartbeat
from siyu.jobs.models import Job
from siyu.jobs.registry import cron, poller
from siyu.kit.time import utcnow
from siyu.stafftasks import generators, stream
from siyu.workspaces.models import Workspace


@poller("stafftasks.unanswered")
def run_unanswered(db: Database) -> int:
    return stream.run_pending(db)


@cron("stafftasks.daily", every="*/10")
def run_daily(session: Session, job: Job) -> None:
    now = utcnow()
    for workspace_id in list(session.scalars(select(Workspace.id).order_by(Workspace.id))):
        generators.run_daily(session, workspace_id, now=now)
        heartbeat(session, job)


@cron("stafftasks.escalate", every="*/5")
def run_escalation(session: Session, job: Job) -> None:
    now = utcnow()
    for workspace_id in list(session.scalars(select(Workspace.id).order_by(Workspace.id))):
        generators.run_escalation(session, workspace_id, now=now)
