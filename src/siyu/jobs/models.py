from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, UTCDateTime
from siyu.kit.models import CreatedAtMixin, IdMixin


class JobStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"  # gave up after max_attempts: a dead letter, kept for inspection


class Job(IdMixin, CreatedAtMixin, Base):
    """A unit of background work, enqueued in the same transaction as the change that needs it."""

    __tablename__ = "job"
    __table_args__ = (
        Index("ix_job_status_run_at", "status", "run_at"),
        Index("ix_job_status_lease_expires_at", "status", "lease_expires_at"),
        # A dedupe key names work that must not be queued twice while one is pending or running;
        # once it has finished, the same key may be enqueued again.
        Index(
            "uq_job_dedupe_key_pending",
            "dedupe_key",
            unique=True,
            sqlite_where=text("status IN ('queued', 'running')"),
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
    )

    # Null for system work (cron ticks); otherwise the workspace the job acts for.
    workspace_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("workspace.id", ondelete="CASCADE"), nullable=True, index=True
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, native_enum=False, length=12, validate_strings=True),
        nullable=False,
        default=JobStatus.queued,
    )
    run_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=5)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    locked_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class CronTick(IdMixin, CreatedAtMixin, Base):
    """One firing of a cron schedule. Unique on (name, tick_at): fired once however many workers run."""

    __tablename__ = "cron_tick"
    __table_args__ = (UniqueConstraint("name", "tick_at"),)

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    tick_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    job_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("job.id", ondelete="SET NULL"), nullable=True)
