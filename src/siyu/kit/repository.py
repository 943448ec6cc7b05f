"""Look-ups every domain needs, always scoped by workspace."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.db import Base
from siyu.errors import Conflict, NotFound

M = TypeVar("M", bound=Base)


def get_in_workspace(session: Session, model: type[M], workspace_id: int, object_id: int, label: str) -> M:
    """The row with this id in this workspace, or NotFound: another workspace's ids look absent."""
    row = session.get(model, object_id)
    if row is None or getattr(row, "workspace_id", None) != workspace_id:
        raise NotFound(f"{label} {object_id} not found in this workspace")
    return row


def flush_unique(session: Session, message: str) -> None:
    """Flushes pending rows; a unique constraint they break becomes Conflict(message), and the caller's
    transaction stays usable (the flush runs in a savepoint)."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(message) from None
