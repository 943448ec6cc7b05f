"""Groups (社群), their members, and group codes (群活码) that rotate across groups as they fill.

A group's member count is kept on the group row (recounted whenever members change), so a code's
rotation reads one column per group instead of counting members on every scan.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    BigInteger,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, UTCDateTime
from siyu.kit.models import CreatedAtMixin, IdMixin, WorkspaceScoped

DEFAULT_CAPACITY = 200  # a WeCom customer group holds 200 by default
MAX_CAPACITY = 500  # and 500 for a certified (认证) corp


class GroupPurpose(enum.StrEnum):
    broadcast = "broadcast"  # 大群/通知群: pushes, measured by open rate and downstream orders
    welfare = "welfare"  # 福利群: coupons and perks, measured by participation
    training = "training"  # 训练营/学习群: measured by answered questions
    activity = "activity"  # 活动群/比赛群: temporary, measured by member activity
    custom = "custom"  # with a label of the operator's


class GroupStatus(enum.StrEnum):
    pending = "pending"  # opened by siyu (a code's template); staff still have to create it in WeCom
    active = "active"
    archived = "archived"  # kept for its history, out of every code's rotation
    dismissed = "dismissed"  # dismissed in WeCom (解散)


class GroupCodeStatus(enum.StrEnum):
    active = "active"
    paused = "paused"


def _enum(cls: type[enum.StrEnum], length: int) -> Enum:
    return Enum(
        cls, native_enum=False, length=length, validate_strings=True, values_callable=lambda e: [m.value for m in e]
    )


class GroupCode(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    """One public code (/g/{slug}) over an ordered list of groups; shows the first one not full."""

    __tablename__ = "group_code"
    __table_args__ = (Index("ix_group_code_workspace_id", "workspace_id"),)

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    slug: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    status: Mapped[GroupCodeStatus] = mapped_column(
        _enum(GroupCodeStatus, 10), nullable=False, default=GroupCodeStatus.active
    )
    # Move on to the next group once a group has this many members (below capacity); None: at capacity.
    threshold: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The template a new group is opened from when every group is full; no name pattern: no template.
    template_name: Mapped[str | None] = mapped_column(String(100), nullable=True)  # "考试冲刺 {n} 群"
    template_purpose: Mapped[GroupPurpose | None] = mapped_column(_enum(GroupPurpose, 20), nullable=True)
    template_label: Mapped[str | None] = mapped_column(String(50), nullable=True)
    template_owner_staff_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True
    )
    template_capacity: Mapped[int] = mapped_column(Integer, nullable=False, default=DEFAULT_CAPACITY)
    # The {n} of the next group opened from the template.
    next_number: Mapped[int] = mapped_column(Integer, nullable=False, default=1)


class ChatGroup(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    __tablename__ = "chat_group"
    __table_args__ = (
        Index("ix_chat_group_workspace_id_wecom_chat_id", "workspace_id", "wecom_chat_id", unique=True),
        Index("ix_chat_group_code_id_code_position", "code_id", "code_position"),
    )

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    purpose: Mapped[GroupPurpose] = mapped_column(_enum(GroupPurpose, 20), nullable=False)
    purpose_label: Mapped[str | None] = mapped_column(String(50), nullable=True)  # custom purposes
    status: Mapped[GroupStatus] = mapped_column(_enum(GroupStatus, 10), nullable=False, default=GroupStatus.active)
    owner_staff_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True
    )
    capacity: Mapped[int] = mapped_column(Integer, nullable=False, default=DEFAULT_CAPACITY)
    # The WeCom customer group (chat_id); events' group_id matches it, or this row's id.
    wecom_chat_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # What the code page shows for this group: the WeCom join link / group QR content.
    join_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    code_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("group_code.id", ondelete="SET NULL"))
    code_position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    member_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Opened by a code's template: staff must create the group in WeCom and fill in chat id / join link.
    from_template: Mapped[bool] = mapped_column(default=False, nullable=False)


class ChatGroupHelper(WorkspaceScoped, Base):
    """A staff member helping the owner run the group (群助理)."""

    __tablename__ = "chat_group_helper"
    __table_args__ = (PrimaryKeyConstraint("group_id", "staff_id"),)

    group_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("chat_group.id", ondelete="CASCADE"), nullable=False)
    staff_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("staff.id", ondelete="CASCADE"), nullable=False)


class ChatGroupMember(WorkspaceScoped, Base):
    """A contact in a group: the latest join, and when they left (None: still in)."""

    __tablename__ = "chat_group_member"
    __table_args__ = (
        PrimaryKeyConstraint("group_id", "contact_id"),
        Index("ix_chat_group_member_contact_id", "contact_id"),
    )

    group_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("chat_group.id", ondelete="CASCADE"), nullable=False)
    contact_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), nullable=False)
    joined_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    left_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class GroupCodeDay(WorkspaceScoped, Base):
    """Per code and local day: public page views (scans)."""

    __tablename__ = "group_code_day"
    __table_args__ = (PrimaryKeyConstraint("code_id", "day"),)

    code_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("group_code.id", ondelete="CASCADE"), nullable=False)
    day: Mapped[dt.date] = mapped_column(Date, nullable=False)
    scans: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
