"""The user portrait, kept incrementally from the event stream, and the recommendation settings.

`contact_content_affinity` holds, per contact and content tag, a decayed score as of a day: the
current value is `score * 0.5 ** ((today - as_of_day) / half_life_days)`. An event of weight w on
day d updates it to `score * 0.5 ** ((d' - as_of_day) / h) + w * 0.5 ** ((d' - d) / h)` with
d' = max(as_of_day, d): exact exponential decay, whatever the order or batching of the events.
`level = log2(score) + (as_of_day - EPOCH) / h` does not change as time passes, so "current
affinity >= t today" is the plain, indexable comparison `level >= log2(t) + (today - EPOCH) / h`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, Float, ForeignKey, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, UTCDateTime
from siyu.kit.models import WorkspaceScoped
from siyu.kit.time import utcnow


class ContactContentAffinity(WorkspaceScoped, Base):
    __tablename__ = "contact_content_affinity"
    __table_args__ = (Index("ix_contact_content_affinity_ws_tag_level", "workspace_id", "content_tag_id", "level"),)

    contact_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    content_tag_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("content_tag.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    score: Mapped[float] = mapped_column(Float, nullable=False)
    as_of_day: Mapped[dt.date] = mapped_column(Date, nullable=False)
    # log2(score) + (as_of_day - EPOCH) / half_life: constant as time passes (see the module docstring).
    level: Mapped[float] = mapped_column(Float, nullable=False)


class ContactContentSeen(WorkspaceScoped, Base):
    """A content item a contact has seen (viewed, favourited, commented, shared): how often and when."""

    __tablename__ = "contact_content_seen"
    __table_args__ = (Index("ix_contact_content_seen_content_id", "content_id"),)

    contact_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    content_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("content_item.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    first_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    count: Mapped[int] = mapped_column(Integer, nullable=False)


class ContentReach(WorkspaceScoped, Base):
    """How many distinct contacts have seen an item (kept with contact_content_seen): the "engaged"
    count of the exploration's Beta posterior, read per request without counting the seen table."""

    __tablename__ = "content_reach"
    __table_args__ = (Index("ix_content_reach_workspace_id", "workspace_id"),)

    content_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("content_item.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    viewers: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class RecommendSettings(Base):
    """One workspace's portrait and ranking settings (siyu.recommend.portrait.RecommendConfig)."""

    __tablename__ = "recommend_settings"

    workspace_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    # Null: the defaults of the running siyu version.
    config: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
