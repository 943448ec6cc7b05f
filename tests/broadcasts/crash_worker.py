"""The worker the crash test starts and kills: runs the broadcasts poller until its broadcast is sent.

python -m tests.broadcasts.crash_worker <database url> <frozen clock, ISO 8601> <broadcast id>
"""

from __future__ import annotations

import datetime as dt
import sys

from siyu.broadcasts import tasks
from siyu.broadcasts.models import Broadcast, BroadcastStatus
from siyu.config import Settings
from siyu.db import Database, create_db_engine
from siyu.kit.time import set_clock


def main(url: str, now: str, broadcast_id: int) -> int:
    frozen = dt.datetime.fromisoformat(now)
    set_clock(lambda: frozen)  # the test's clock: 10:00 in Shanghai, outside quiet hours
    settings = Settings(database_url=url, sqlite_synchronous="NORMAL", _env_file=None)  # type: ignore[call-arg]
    db = Database(create_db_engine(url, settings))
    while True:
        tasks.send_due(db, budget_seconds=0.5)
        with db.transaction(write=False) as session:
            broadcast = session.get(Broadcast, broadcast_id)
            if broadcast is None or broadcast.status is not BroadcastStatus.sending:
                return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
