from __future__ import annotations

import enum

from sqlalchemy import (
    BigInteger,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base
from siyu.kit.models import CreatedAtMixin, IdMixin, WorkspaceScoped


class TagGroup(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    __tablename__ = "tag_group"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    # Exclusive: a contact holds at most one tag of the group (e.g. intention level A/B/C).
    exclusive: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class Tag(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    __tablename__ = "tag"
    __table_args__ = (UniqueConstraint("workspace_id", "group_id", "name"),)

    group_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tag_group.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False)


class ContactTag(WorkspaceScoped, CreatedAtMixin, Base):
    __tablename__ = "contact_tag"
    __table_args__ = (
        PrimaryKeyConstraint("contact_id", "tag_id"),
        # Lists filtered by tag walk this index in contact order: no sort, no scan.
        Index("ix_contact_tag_tag_id_contact_id", "tag_id", "contact_id"),
    )

    contact_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), nullable=False)
    tag_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tag.id", ondelete="CASCADE"), nullable=False)


class TagAction(enum.StrEnum):
    added = "added"
    removed = "removed"


class TagSource(enum.StrEnum):
    manual = "manual"  # a staff member in the console or through their session
    api = "api"  # an integrator's API key
    rule = "rule"  # a smart-tag rule
    import_ = "import"  # a spreadsheet import
    merge = "merge"  # moved from a merged profile
    exclusive = "exclusive"  # removed because another tag of an exclusive group was added
    channel = "channel"  # put on by the channel code (渠道活码) the contact came through
    journey = "journey"  # a journey's tag step (the reason names the journey and the step)


class TagChange(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    __tablename__ = "tag_change"
    __table_args__ = (Index("ix_tag_change_contact_id_created_at", "contact_id", "created_at"),)

    contact_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), nullable=False)
    tag_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("tag.id", ondelete="SET NULL"), nullable=True)
    # Kept so history reads right after a tag is renamed or deleted.
    tag_name: Mapped[str] = mapped_column(String(100), nullable=False)
    action: Mapped[TagAction] = mapped_column(
        Enum(TagAction, native_enum=False, length=10, validate_strings=True), nullable=False
    )
    source: Mapped[TagSource] = mapped_column(
        Enum(
            TagSource,
            native_enum=False,
            length=10,
            validate_strings=True,
            values_callable=lambda e: [m.value for m in e],
        ),
        nullable=False,
    )
    actor_staff_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True
    )
    actor_api_key_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("api_key.id", ondelete="SET NULL"), nullable=True
    )
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
