"""Worker wiring: received batches are stored by a poller (seconds behind the senders); old outcomes pruned."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.db import Database
from siyu.events import inbox
from siyu.jobs.models import Job
from siyu.jobs.registry import cron, poller

# Senders look a batch up soon after sending it; a month of outcomes is plenty.
KEEP_OUTCOMES = dt.timedelta(days=30)


@poller("events.inbox", own_thread=True)
def store_received_batches(db: Database) -> int:
    return inbox.drain_for(db)


@cron("events.prune_batches", every=dt.timedelta(hours=6))
def prune_batch_outcomes(session: Session, job: Job) -> None:
    inbox.prune_outcomes(session, older_than=KEEP_OUTCOMES)
