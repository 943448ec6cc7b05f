"""Low-level event writes shared by ingestion and by services that record system events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Update, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from siyu.events.models import Event
from siyu.kit.time import utcnow
from siyu.workspaces.models import Workspace


def allocate_seq(session: Session, workspace_id: int, count: int) -> int:
    """Reserves `count` sequence numbers and returns the first.

    The UPDATE locks the workspace row until commit, so concurrent ingesters take turns and sequence
    order equals commit order: a consumer that has read up to N never later finds an event below N.
    """
    statement: Update = (
        update(Workspace)
        .where(Workspace.id == workspace_id)
        .values(event_seq=Workspace.event_seq + count)
        .returning(Workspace.event_seq)
    )
    last = session.execute(statement).scalar_one()
    return int(last) - count + 1


def existing_event_ids(session: Session, workspace_id: int, event_ids: Sequence[str]) -> set[str]:
    if not event_ids:
        return set()
    rows = session.execute(
        select(Event.event_id).where(Event.workspace_id == workspace_id, Event.event_id.in_(event_ids))
    )
    return {row[0] for row in rows}


def insert_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Inserts prepared rows; an event id that a concurrent batch stored first is skipped, not an error."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Event).on_conflict_do_nothing(index_elements=["workspace_id", "event_id"])
    # Core executemany on the session's connection: same transaction, none of the ORM's per-row work.
    session.connection().execute(statement, rows)


def record_system_event(
    session: Session,
    *,
    workspace_id: int,
    contact_id: int,
    type: str,
    event_id: str,
    properties: dict[str, Any],
    occurred_at: dt.datetime | None = None,
) -> None:
    """An event siyu itself produces (a merge, later a segment entry), numbered like any other."""
    now = utcnow()
    seq = allocate_seq(session, workspace_id, 1)
    insert_events(
        session,
        [
            {
                "workspace_id": workspace_id,
                "seq": seq,
                "event_id": event_id,
                "type": type,
                "contact_id": contact_id,
                "occurred_at": occurred_at or now,
                "received_at": now,
                "properties": properties,
            }
        ],
    )
