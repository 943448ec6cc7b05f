from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    Enum,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, UTCDateTime
from siyu.kit.models import CreatedAtMixin, IdMixin, WorkspaceScoped
from siyu.kit.time import utcnow


class Gender(enum.StrEnum):
    male = "male"
    female = "female"
    unknown = "unknown"


class Contact(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    __tablename__ = "contact"
    __table_args__ = (
        Index("ix_contact_workspace_id_id", "workspace_id", "id"),
        Index("ix_contact_workspace_id_owner_id_id", "workspace_id", "owner_id", "id"),
        Index("ix_contact_workspace_id_created_at", "workspace_id", "created_at"),
        Index("ix_contact_workspace_id_source_channel", "workspace_id", "source_channel"),
        # Name search is a prefix match: a range on this index (pattern ops so LIKE 'x%' uses it on PostgreSQL).
        Index("ix_contact_workspace_id_name", "workspace_id", "name", postgresql_ops={"name": "varchar_pattern_ops"}),
        # The few contacts with a time zone of their own (delivery's quiet hours and local days).
        Index(
            "ix_contact_workspace_id_timezone",
            "workspace_id",
            "timezone",
            sqlite_where=text("timezone IS NOT NULL"),
            postgresql_where=text("timezone IS NOT NULL"),
        ),
        # The self-reference: deleting a contact (or a workspace) checks who was merged into it.
        Index(
            "ix_contact_merged_into_id",
            "merged_into_id",
            sqlite_where=text("merged_into_id IS NOT NULL"),
            postgresql_where=text("merged_into_id IS NOT NULL"),
        ),
    )

    name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    owner_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True)
    # The standard profile of seed 002's customer statistics table.
    source_channel: Mapped[str | None] = mapped_column(String(64), nullable=True)
    first_consult_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    consult_question: Mapped[str | None] = mapped_column(Text, nullable=True)
    region: Mapped[str | None] = mapped_column(String(100), nullable=True)
    occupation: Mapped[str | None] = mapped_column(String(100), nullable=True)
    gender: Mapped[Gender | None] = mapped_column(
        Enum(Gender, native_enum=False, length=10, validate_strings=True), nullable=True
    )
    birthday: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    # Month*100+day of the birthday, so "birthday in the next 7 days" is an indexable range.
    birthday_mmdd: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    # Custom attributes, declared per workspace (AttributeDefinition) and validated against it.
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)
    # IANA zone ("Asia/Tokyo") when it differs from the workspace's: quiet hours and daily budgets follow it.
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Set when this profile was merged into another; the row stays so old ids still resolve.
    merged_into_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("contact.id", ondelete="SET NULL"), nullable=True
    )


class Identity(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    """(type, value) that names one person on one platform; unique per workspace."""

    __tablename__ = "identity"
    __table_args__ = (UniqueConstraint("workspace_id", "type", "value"),)

    contact_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), nullable=False, index=True
    )
    type: Mapped[str] = mapped_column(String(40), nullable=False)
    value: Mapped[str] = mapped_column(String(256), nullable=False)


class Note(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    __tablename__ = "note"

    contact_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), nullable=False, index=True
    )
    author_staff_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True
    )
    author_api_key_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("api_key.id", ondelete="SET NULL"), nullable=True
    )
    body: Mapped[str] = mapped_column(Text, nullable=False)


class ContactMerge(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    """Two profiles found to be one person: what moved to the survivor, and why."""

    __tablename__ = "contact_merge"

    survivor_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), nullable=False, index=True
    )
    merged_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), nullable=False, index=True
    )
    reason: Mapped[str] = mapped_column(String(200), nullable=False)
    # Counts of moved rows and the merged profile's fields as they were, so nothing is lost.
    details: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)


class AttributeType(enum.StrEnum):
    text = "text"
    number = "number"
    date = "date"
    choice = "choice"


class AttributeDefinition(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    """A custom contact attribute declared by the workspace, with its type."""

    __tablename__ = "attribute_definition"
    __table_args__ = (UniqueConstraint("workspace_id", "key"),)

    key: Mapped[str] = mapped_column(String(64), nullable=False)
    label: Mapped[str] = mapped_column(String(100), nullable=False)
    type: Mapped[AttributeType] = mapped_column(
        Enum(AttributeType, native_enum=False, length=10, validate_strings=True), nullable=False
    )
    choices: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)


class OwnerChange(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    """A contact handed from one staff member to another (e.g. 离职继承), shown on the timeline."""

    __tablename__ = "owner_change"
    __table_args__ = (Index("ix_owner_change_contact_id_created_at", "contact_id", "created_at"),)

    contact_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), nullable=False)
    from_staff_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True
    )
    to_staff_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True
    )
    actor_staff_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True
    )
    actor_api_key_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("api_key.id", ondelete="SET NULL"), nullable=True
    )
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
