"""Worker wiring of broadcasts: one poller starts due broadcasts, sends their batches, creates WeCom tasks
and reads their confirmations (imported by every worker).

Each batch is its own transaction holding the broadcast's row (FOR UPDATE SKIP LOCKED on PostgreSQL, so
two workers never send one broadcast at once; the one writer on SQLite). A turn stops after
TURN_SECONDS so the worker's other pollers and jobs get their share.
"""

from __future__ import annotations

import time

from siyu.broadcasts import service, wecom
from siyu.db import Database
from siyu.jobs.registry import poller
from siyu.kit.time import utcnow

TURN_SECONDS = 1.0


def send_due(db: Database, *, budget_seconds: float = TURN_SECONDS, size: int = service.BATCH) -> int:
    """Starts due broadcasts and sends batches until nothing is left or the time is up; work done."""
    deadline = time.monotonic() + budget_seconds
    with db.transaction(write=False) as session:
        ids = service.due_ids(session, utcnow())
    done = 0
    # round robin: one step per broadcast per pass, so one big broadcast does not starve the others
    while ids and time.monotonic() < deadline:
        busy = []
        for broadcast_id in ids:
            with db.transaction() as session:
                broadcast = service.lock(session, broadcast_id)
                work = 0 if broadcast is None else service.step(session, broadcast, now=utcnow(), size=size)
            done += work
            if work:
                busy.append(broadcast_id)
            if time.monotonic() >= deadline:
                break
        ids = busy
    return done


@poller("broadcasts.send")
def run(db: Database) -> int:
    done = send_due(db)
    done += wecom.create_pending(db)
    done += wecom.check_results(db)
    return done
