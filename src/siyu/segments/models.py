from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import CLUSTERED, Base, UTCDateTime
from siyu.kit.models import CreatedAtMixin, IdMixin, WorkspaceScoped
from siyu.kit.time import utcnow


class Segment(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    """A saved rule (see docs/en/segments.md) whose members are kept up to date as contacts change."""

    __tablename__ = "segment"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    rule: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    # Bumped on every rule change; a refresh started on an older version is discarded.
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    member_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    refreshed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_by_staff_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True
    )
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)


class SegmentMember(WorkspaceScoped, Base):
    __tablename__ = "segment_member"
    __table_args__ = (Index("ix_segment_member_contact_id", "contact_id"), CLUSTERED)

    segment_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("segment.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    contact_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    entered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)


class SegmentSizeDay(WorkspaceScoped, Base):
    """A segment's size at the end of a local day (the last refresh of that day), and its moves."""

    __tablename__ = "segment_size_day"

    segment_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("segment.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    entered: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    exited: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
