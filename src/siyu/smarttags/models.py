from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Enum, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, UTCDateTime
from siyu.kit.models import CreatedAtMixin, IdMixin, WorkspaceScoped
from siyu.kit.time import utcnow


class SmartTagKind(enum.StrEnum):
    rule = "rule"  # a segment rule (docs/en/segments.md), re-evaluated as contacts change
    keywords = "keywords"  # words in a received message (message.received, property `text`)


class SmartTagRule(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    """Puts `tag_id` on the contacts a rule matches, or who say one of the keywords (docs/en/smart-tags.md)."""

    __tablename__ = "smart_tag_rule"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name"),
        Index("ix_smart_tag_rule_tag_id", "tag_id"),
    )

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    # Deleting the tag deletes the rules that put it on: a smart tag without its tag means nothing.
    tag_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tag.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[SmartTagKind] = mapped_column(
        Enum(SmartTagKind, native_enum=False, length=10, validate_strings=True), nullable=False
    )
    rule: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    keywords: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    # Rule-based only: holders who no longer match lose the tag (also those who got it by hand).
    remove_when_unmatched: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_by_staff_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True
    )
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)
    # What it has done, for the operator: the last full run, the last change it made, and running totals.
    last_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_change_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    added_total: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    removed_total: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    # Why the last run skipped it (e.g. its rule names a tag deleted since); cleared by a good run.
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
