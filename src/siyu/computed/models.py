from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import CLUSTERED, Base, UTCDateTime
from siyu.kit.models import WorkspaceScoped
from siyu.kit.time import utcnow


class ContactEventStat(WorkspaceScoped, Base):
    """How often and when a contact did one event type, over all time."""

    __tablename__ = "contact_event_stat"
    __table_args__ = (
        Index("ix_contact_event_stat_ws_type_contact", "workspace_id", "event_type", "contact_id"),
        CLUSTERED,
    )

    contact_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    event_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, nullable=False)
    first_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    # Sum of the numeric `amount` property in cents (orders, refunds): integers add up exactly.
    amount_cents: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class ContactEventDay(WorkspaceScoped, Base):
    """Events of one type a contact did on one local day (workspace time zone): windowed counts."""

    __tablename__ = "contact_event_day"
    __table_args__ = (
        # "content.viewed at least twice in the last 7 days": a range over (type, day), grouped by contact.
        Index("ix_contact_event_day_ws_type_day", "workspace_id", "event_type", "day", "contact_id", "count"),
        CLUSTERED,
    )

    contact_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    event_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, nullable=False)


class StreamCursor(Base):
    """How far a consumer has read a workspace's event stream (by sequence number)."""

    __tablename__ = "stream_cursor"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class ContactDirty(WorkspaceScoped, Base):
    """A contact changed outside the event stream (tags, profile, owner): segments look at it again."""

    __tablename__ = "contact_dirty"
    __table_args__ = (Index("ix_contact_dirty_workspace_id", "workspace_id"),)

    contact_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    marked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
