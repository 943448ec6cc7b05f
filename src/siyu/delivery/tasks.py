"""Worker wiring of delivery: job handlers, cron schedules and pollers (imported by every worker).

- job `delivery.send` {delivery_id}: sends one queued external delivery (siyu.delivery.channels);
- poller `delivery.held`: held deliveries whose retry_at has come are evaluated again and sent, held
  again or skipped;
- poller `delivery.optouts`: reads `message.received` after its own stream cursor and opts out the
  contacts whose whole message is an opt-out word;
- poller `delivery.sandbox`: records the sandbox's simulated opens and clicks when they fall due;
- cron `delivery.housekeeping` (hourly): prunes old budget counters, and settles deliveries stranded in
  `queued` whose send job was given up without running (a lease that expired on its last attempt).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from siyu.db import Database
from siyu.delivery import channels, stream
from siyu.jobs.models import Job
from siyu.jobs.registry import cron, exponential_backoff, job_handler, poller


@job_handler("delivery.send", max_attempts=8, retry_backoff=exponential_backoff(base=15.0, cap=3600.0))
def send(session: Session, job: Job) -> None:
    channels.send_job(session, job)


@poller("delivery.held")
def release_held(db: Database) -> int:
    return stream.release_due(db)


@poller("delivery.optouts")
def opt_outs(db: Database) -> int:
    return stream.run_opt_outs(db)


@poller("delivery.sandbox")
def sandbox_engagement(db: Database) -> int:
    return stream.record_engagement(db)


@cron("delivery.housekeeping", every="7")
def housekeeping(session: Session, job: Job) -> None:
    stream.housekeeping(session)
