"""Contacts changed outside the event stream (tags, profile, owner, identities).

Marked in the same transaction as the change; the user-model pipeline takes them, like new events,
and looks at their segments and smart tags again within seconds.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Select, delete, literal, select, true
from sqlalchemy.orm import Session

from siyu.computed.models import ContactDirty
from siyu.kit.sql import dialect_insert
from siyu.kit.time import utcnow

TAKE_LIMIT = 20_000


def mark_dirty(session: Session, workspace_id: int, contacts: Collection[int] | Select[Any]) -> None:
    insert = dialect_insert(session)
    now = utcnow()
    if isinstance(contacts, Select):
        ids = contacts.subquery()
        statement = insert(ContactDirty).from_select(
            ["workspace_id", "contact_id", "marked_at"],
            # WHERE true: SQLite cannot otherwise tell ON CONFLICT apart from a join constraint
            select(literal(workspace_id), ids.c[0], literal(now, ContactDirty.marked_at.type)).where(true()),
        )
        session.execute(statement.on_conflict_do_nothing())
        return
    if not contacts:
        return
    rows = [{"workspace_id": workspace_id, "contact_id": c, "marked_at": now} for c in set(contacts)]
    session.execute(insert(ContactDirty).on_conflict_do_nothing(), rows)


def take_dirty(session: Session, workspace_id: int, limit: int = TAKE_LIMIT) -> list[int]:
    """Removes and returns up to `limit` marked contacts; the caller's transaction makes it stick."""
    ids = list(
        session.scalars(
            select(ContactDirty.contact_id)
            .where(ContactDirty.workspace_id == workspace_id)
            .order_by(ContactDirty.contact_id)
            .limit(limit)
        )
    )
    if ids:
        session.execute(delete(ContactDirty).where(ContactDirty.contact_id.in_(ids)))
    return ids
