from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, Float, ForeignKey, Index, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import CLUSTERED, Base, UTCDateTime
from siyu.kit.models import WorkspaceScoped
from siyu.kit.time import utcnow


class ContactScore(WorkspaceScoped, Base):
    """What the built-in models say of one contact, and why (`reasons`)."""

    __tablename__ = "contact_score"
    __table_args__ = (
        Index("ix_contact_score_ws_lifecycle", "workspace_id", "lifecycle_stage"),
        Index("ix_contact_score_ws_tier", "workspace_id", "value_tier"),
        Index("ix_contact_score_ws_intention", "workspace_id", "intention_score"),
        CLUSTERED,
    )

    contact_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    lifecycle_stage: Mapped[str | None] = mapped_column(String(20), nullable=True)
    r_score: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    f_score: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    m_score: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    value_tier: Mapped[str | None] = mapped_column(String(20), nullable=True)
    intention_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    intention_level: Mapped[str | None] = mapped_column(String(10), nullable=True)
    transaction_stage: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # {"lifecycle": [...], "rfm": [...], "value_tier": [...], "intention": [...], "transaction_stage": [...]}:
    # lines in plain words, shown on the contact page.
    reasons: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class ScoringSettings(Base):
    """One workspace's settings for the built-in models (siyu.scoring.config), and the RFM cut points
    of the last full run, which incremental runs reuse so that scores stay comparable between runs."""

    __tablename__ = "scoring_settings"

    workspace_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    # Null: the defaults of the running siyu version, so improved defaults reach workspaces that never chose.
    config: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # {"recency_days": [4 ints], "frequency": [...], "monetary_cents": [...], "customers": n}; null until a run.
    rfm_cuts: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    rfm_cuts_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class ContactIntention(WorkspaceScoped, Base):
    """One contact's intention points as a decayed level (siyu.scoring.intention): `total` billionths
    of a point as of `anchor_day`, the last local day with a scored event, over the daily counts from
    the workspace's `IntentionBasis.floor_day` on. Today's score is total × 0.5^((today - anchor) / h),
    read by a full scoring run instead of every daily count of the window."""

    __tablename__ = "contact_intention"
    # No index on (workspace_id, anchor_day): a step rewrites nearly every touched contact's row, and such
    # an index cost a page each; the hourly full run scans the table instead (migration 0024).
    __table_args__ = (CLUSTERED,)

    contact_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    anchor_day: Mapped[dt.date] = mapped_column(Date, nullable=False)
    total: Mapped[int] = mapped_column(BigInteger, nullable=False)


class IntentionBasis(Base):
    """What a workspace's contact_intention rows were folded with: the first local day whose counts they
    hold (`floor_day`; full runs move it up with the window) and a fingerprint of the intention settings
    (points, half-life, window). Missing or different: the next full run folds every contact again."""

    __tablename__ = "intention_basis"

    workspace_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    floor_day: Mapped[dt.date] = mapped_column(Date, nullable=False)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
