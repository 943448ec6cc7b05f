"""Low-level event writes shared by ingestion and by services that record system events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Update, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from siyu.events.models import Event
from siyu.kit.sql import select_where_in, sqlite_datetime
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
    sql = "SELECT event_id FROM event WHERE workspace_id = {p} AND event_id {in}"
    return {row[0] for row in select_where_in(session, sql, [workspace_id], event_ids)}


_COLUMNS = ("workspace_id", "seq", "event_id", "type", "contact_id", "occurred_at", "received_at", "properties")
_SQLITE_INSERT = (
    f"INSERT INTO event ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)}) "
    "ON CONFLICT (workspace_id, event_id) DO NOTHING"
)


def insert_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Inserts prepared rows; an event id that a concurrent batch stored first is skipped, not an error."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name == "sqlite":
        # The ingestion hot path: one DB-API executemany, values written exactly as SQLAlchemy's SQLite
        # DATETIME and JSON types write them (tests/test_events_storage.py holds the two together).
        received = sqlite_datetime(rows[0]["received_at"])
        connection.exec_driver_sql(
            _SQLITE_INSERT,
            [
                (
                    r["workspace_id"],
                    r["seq"],
                    r["event_id"],
                    r["type"],
                    r["contact_id"],
                    sqlite_datetime(r["occurred_at"]),
                    received if r["received_at"] is rows[0]["received_at"] else sqlite_datetime(r["received_at"]),
                    orjson.dumps(r["properties"]).decode(),
                )
                for r in rows
            ],
        )
        return
    statement = postgresql.insert(Event).on_conflict_do_nothing(index_elements=["workspace_id", "event_id"])
    connection.execute(statement, rows)


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
