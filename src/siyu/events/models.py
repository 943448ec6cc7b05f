from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, UTCDateTime
from siyu.kit.models import IdMixin, WorkspaceScoped


class Event(IdMixin, WorkspaceScoped, Base):
    """One thing a contact did. Append-only: rows are never updated, except `contact_id` on a merge."""

    __tablename__ = "event"
    __table_args__ = (
        # Consumers read "seq > last seen" in order; seq is handed out in commit order.
        UniqueConstraint("workspace_id", "seq"),
        # The sender's id makes a replayed batch add nothing.
        UniqueConstraint("workspace_id", "event_id"),
        Index("ix_event_contact_id_occurred_at", "contact_id", "occurred_at"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    event_id: Mapped[str] = mapped_column(String(128), nullable=False)
    type: Mapped[str] = mapped_column(String(64), nullable=False)
    contact_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), nullable=False)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
