"""Tables of journeys (SOP): definitions and their immutable versions, each contact's place as a row with a
timer (`journey_enrolment.due_at`), the per-(journey, contact) row that decides re-entry, and per-step
counters.

A contact is in a journey at most once at a time: `journey_contact` (one row per journey and contact) is
locked while an enrolment is decided, and `journey_enrolment.live_contact_id` (the contact id while the
enrolment is active, NULL once it ends) is unique per journey, so the database itself refuses a second
live enrolment however the triggers and workers race.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, UTCDateTime
from siyu.kit.models import CreatedAtMixin, IdMixin, WorkspaceScoped
from siyu.kit.time import utcnow


class JourneyStatus(enum.StrEnum):
    draft = "draft"  # never activated: nobody enters
    active = "active"  # triggers enrol, the runner moves contacts along
    paused = "paused"  # nobody enters, nobody moves; goal events still take contacts out
    archived = "archived"  # ended: every contact still in it was taken out


class EnrolmentStatus(enum.StrEnum):
    active = "active"  # in the journey: due to run a step, or waiting
    completed = "completed"  # ran off the end of a path
    exited = "exited"  # taken out: goal reached, an exit step, the journey archived, by hand


class Arm(enum.StrEnum):
    """Which side of a holdout step the contact fell on (None: no holdout step reached)."""

    treated = "treated"
    holdout = "holdout"  # receives nothing (sends, invites, webhooks, staff tasks), measured all the same


def _enum(cls: type[enum.StrEnum], length: int) -> Enum:
    return Enum(
        cls, native_enum=False, length=length, validate_strings=True, values_callable=lambda e: [m.value for m in e]
    )


class Journey(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    __tablename__ = "journey"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name"),
        Index("ix_journey_status_next_fire_at", "status", "next_fire_at"),
    )

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    description: Mapped[str | None] = mapped_column(String(500), nullable=True)
    status: Mapped[JourneyStatus] = mapped_column(_enum(JourneyStatus, 10), nullable=False, default=JourneyStatus.draft)
    # The definition being edited; publishing copies it into a new immutable version.
    draft: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    # The latest published version number (new enrolments enter it); None until the first publish.
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The trigger kind of that version: event, segment, tag, date, schedule, manual.
    trigger_kind: Mapped[str | None] = mapped_column(String(20), nullable=True)
    # Date and schedule triggers: the next moment the audience is looked at (UTC).
    next_fire_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Events up to this stream position happened before the journey was activated: they trigger nothing.
    start_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    activated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_by_staff_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True
    )
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)


class JourneyVersion(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    """A published definition. Never changed: enrolments stay on the version they entered."""

    __tablename__ = "journey_version"
    __table_args__ = (UniqueConstraint("journey_id", "version"),)

    journey_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("journey.id", ondelete="CASCADE"), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    published_by_staff_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True
    )


class JourneyEnrolment(IdMixin, WorkspaceScoped, Base):
    """One contact's way through one journey, from entry to the end: where they are and when to look again."""

    __tablename__ = "journey_enrolment"
    __table_args__ = (
        # The database's own guard against double enrolment: one live enrolment per journey and contact.
        UniqueConstraint("journey_id", "live_contact_id"),
        # The runner claims what is due, oldest first, reading this index in order (a LIMIT stops early
        # instead of sorting everything due); ended enrolments have no due_at and are not in the way.
        Index("ix_journey_enrolment_due_at_id", "due_at", "id"),
        # Per-step numbers (waiting now) and the enrolment list filtered by status and step.
        Index("ix_journey_enrolment_journey_id_status_step", "journey_id", "status", "step"),
        # Goal and wait-for-event matching look up the contacts of a run of events.
        Index("ix_journey_enrolment_contact_id_status", "contact_id", "status"),
    )

    journey_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("journey.id", ondelete="CASCADE"), nullable=False)
    version_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("journey_version.id", ondelete="CASCADE"), nullable=False
    )
    contact_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), nullable=False)
    status: Mapped[EnrolmentStatus] = mapped_column(_enum(EnrolmentStatus, 10), nullable=False)
    step: Mapped[str] = mapped_column(String(40), nullable=False)  # the step they are at (or ended at)
    # At a wait step, waiting for its timer (or its event); False: the step has still to run.
    waiting: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Waiting for an event (with a timeout): its type, the stream position the wait began at, and whether
    # a matching event came (set by the trigger poller, which also makes the enrolment due at once).
    wait_event: Mapped[str | None] = mapped_column(String(64), nullable=True)
    wait_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    event_matched: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # The stream position at entry: goal events after it count.
    entry_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    arm: Mapped[Arm | None] = mapped_column(_enum(Arm, 10), nullable=True)
    trigger: Mapped[str | None] = mapped_column(String(100), nullable=True)  # what enrolled them
    entered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    exit_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)
    goal_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    live_contact_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class JourneyContact(WorkspaceScoped, Base):
    """Per journey and contact: how often and when they entered and left. Locked while an entry is decided,
    so two triggers or two workers deciding at once take turns (re-entry rules read it)."""

    __tablename__ = "journey_contact"
    __table_args__ = (
        PrimaryKeyConstraint("journey_id", "contact_id"),
        Index("ix_journey_contact_contact_id", "contact_id"),
    )

    journey_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("journey.id", ondelete="CASCADE"), nullable=False)
    contact_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), nullable=False)
    enrolments: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    active_enrolment_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_entered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_exited_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class JourneyStepStat(WorkspaceScoped, Base):
    """Counters per journey and step id (over every version), added to once per runner batch.

    arrived = passed + exited + waiting now (waiting is counted live from the enrolments).
    """

    __tablename__ = "journey_step_stat"
    __table_args__ = (PrimaryKeyConstraint("journey_id", "step"),)

    journey_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("journey.id", ondelete="CASCADE"), nullable=False)
    step: Mapped[str] = mapped_column(String(40), nullable=False)
    arrived: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    passed: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    exited: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    goal: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)  # exits by the goal at this step
    # Outcomes of what the step asked delivery to send (send, invite, webhook steps).
    sent: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)  # sent or queued
    held: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    skipped: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    failed: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    # Outreach not made because the contact is in the holdout (or had nobody to do it: no owner).
    withheld: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


STAT_COUNTERS = ("arrived", "passed", "exited", "goal", "sent", "held", "skipped", "failed", "withheld")
