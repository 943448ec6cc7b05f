"""Consumers of the event stream: each reads a workspace's events in sequence order after its own cursor
(a `stream_cursor` row named after it) and moves the cursor in the transaction that applies what it read,
so a crash or a restart reads nothing twice and misses nothing.

What the consumers share lives here: taking the cursor (one worker at a time per workspace and name),
the workspaces a cursor is behind in, reading the next events of some types, moving the cursor, and the
loop that steps every workspace behind.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Select, select
from sqlalchemy.orm import Session

from siyu.computed.models import StreamCursor
from siyu.db import Database
from siyu.events.models import Event
from siyu.kit.sql import dialect_insert
from siyu.kit.time import utcnow
from siyu.workspaces.models import Workspace


def lock(session: Session, name: str, workspace_id: int, *, start: int = 0) -> StreamCursor | None:
    """The workspace's cursor `name` (made at `start` when new), locked for this transaction; None when
    another worker holds it (PostgreSQL; SQLite has one writer)."""
    session.execute(
        dialect_insert(session)(StreamCursor)
        .values(name=name, workspace_id=workspace_id, seq=start, updated_at=utcnow())
        .on_conflict_do_nothing()
    )
    return session.scalars(
        select(StreamCursor)
        .where(StreamCursor.name == name, StreamCursor.workspace_id == workspace_id)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ).one_or_none()


def behind(name: str) -> Select[int]:
    """The ids of workspaces with events the cursor `name` has not read (no cursor yet: any event)."""
    return (
        select(Workspace.id)
        .outerjoin(StreamCursor, (StreamCursor.workspace_id == Workspace.id) & (StreamCursor.name == name))
        .where((StreamCursor.seq.is_(None) & (Workspace.event_seq > 0)) | (Workspace.event_seq > StreamCursor.seq))
    )


def workspaces_behind(session: Session, name: str) -> list[int]:
    return list(session.scalars(behind(name).order_by(Workspace.id)))


# (type, contact_id, occurred_at, properties, seq)
EventRow = Row[str, int, dt.datetime, dict[str, Any], int]


@dataclass
class Read:
    """The events a step read: rows of (type, contact_id, occurred_at, properties, seq) in sequence order."""

    cursor: StreamCursor
    rows: Sequence[EventRow]
    head: int
    limit: int

    def advance(self) -> int:
        """Moves the cursor past what was read: to the last row when the read was cut at `limit`, else to
        the head (events of other types up to it are read too). Returns the events read, at least 1 (the
        cursor moved: the caller steps again)."""
        self.cursor.seq = self.rows[-1][4] if len(self.rows) == self.limit else self.head
        self.cursor.updated_at = utcnow()
        return max(len(self.rows), 1)


def read_next(session: Session, name: str, workspace_id: int, types: Collection[str], limit: int) -> Read | None:
    """Locks the cursor and reads up to `limit` events of `types` after it, up to the workspace's head.
    None when another worker holds the cursor or it is at the head."""
    cursor = lock(session, name, workspace_id)
    if cursor is None:
        return None
    head = session.scalar(select(Workspace.event_seq).where(Workspace.id == workspace_id)) or 0
    if head <= cursor.seq:
        return None
    rows = session.execute(
        select(Event.type, Event.contact_id, Event.occurred_at, Event.properties, Event.seq)
        .where(
            Event.workspace_id == workspace_id,
            Event.seq > cursor.seq,
            Event.seq <= head,
            Event.type.in_(types),
        )
        .order_by(Event.seq)
        .limit(limit)
    ).all()
    return Read(cursor, rows, head, limit)


def run_behind(db: Database, name: str, step: Callable[[Session, int], int], *, max_steps: int = 20) -> int:
    """Steps each workspace the cursor `name` is behind in, each step its own transaction, until a step
    reads nothing or `max_steps` have run. Returns what the steps returned, summed."""
    with db.transaction(write=False) as session:
        pending = workspaces_behind(session, name)
    done = 0
    for workspace_id in pending:
        for _ in range(max_steps):
            with db.transaction() as session:
                read = step(session, workspace_id)
            done += read
            if read == 0:
                break
    return done


__all__ = ["EventRow", "Read", "behind", "lock", "read_next", "run_behind", "workspaces_behind"]
