"""Worker wiring: group memberships follow the event stream through a poller."""

from __future__ import annotations

from siyu.db import Database
from siyu.groups import stream
from siyu.jobs.registry import poller


@poller("groups.members")
def run_members(db: Database) -> int:
    return stream.run_pending(db)
