"""Channels (where people come from), channel codes (渠道活码) and the touches they record.

Counters are kept per day (the workspace's local date) so caps, least-loaded rotation and the numbers
pages read one small row instead of counting touches.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, UTCDateTime
from siyu.kit.models import CreatedAtMixin, IdMixin, WorkspaceScoped


class ChannelKind(enum.StrEnum):
    douyin = "douyin"  # 抖音
    xiaohongshu = "xiaohongshu"  # 小红书
    zhihu = "zhihu"  # 知乎
    weibo = "weibo"  # 微博
    baidu = "baidu"  # 百度
    taobao = "taobao"  # 淘宝
    jd = "jd"  # 京东
    pinduoduo = "pinduoduo"  # 拼多多
    offline_flyer = "offline_flyer"  # 线下传单
    event = "event"  # 活动
    referral = "referral"  # 转介绍
    custom = "custom"  # 自定义


class CodeStatus(enum.StrEnum):
    active = "active"
    paused = "paused"


class Rotation(enum.StrEnum):
    round_robin = "round_robin"  # pool order, one after the other
    weighted = "weighted"  # smooth weighted round robin: shares proportional to weight
    least_loaded = "least_loaded"  # the member with the fewest adds today


class TouchSource(enum.StrEnum):
    link = "link"  # the public link page /c/{slug}
    wecom = "wecom"  # a WeCom "add external contact" callback


def _enum(cls: type[enum.StrEnum], length: int) -> Enum:
    return Enum(
        cls, native_enum=False, length=length, validate_strings=True, values_callable=lambda e: [m.value for m in e]
    )


class Channel(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    __tablename__ = "channel"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    kind: Mapped[ChannelKind] = mapped_column(_enum(ChannelKind, 20), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)


class ChannelCost(IdMixin, WorkspaceScoped, Base):
    """What the channel cost over a period (both days included), in yuan."""

    __tablename__ = "channel_cost"

    channel_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("channel.id", ondelete="CASCADE"), nullable=False, index=True
    )
    period_start: Mapped[dt.date] = mapped_column(Date, nullable=False)
    period_end: Mapped[dt.date] = mapped_column(Date, nullable=False)
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2), nullable=False)


class ChannelCode(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    __tablename__ = "channel_code"
    __table_args__ = (
        Index("ix_channel_code_workspace_id_channel_id", "workspace_id", "channel_id"),
        Index("ix_channel_code_workspace_id_wecom_state", "workspace_id", "wecom_state", unique=True),
    )

    channel_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("channel.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    # The public link /c/{slug}: random, unguessable, unique across workspaces.
    slug: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    status: Mapped[CodeStatus] = mapped_column(_enum(CodeStatus, 10), nullable=False, default=CodeStatus.active)
    rotation: Mapped[Rotation] = mapped_column(_enum(Rotation, 20), nullable=False, default=Rotation.round_robin)
    # Who gets the contact when every pool member is capped or outside their hours.
    backup_staff_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True
    )
    # What the link page asks for: phone, douyin_open_id, xiaohongshu_id or wechat_id.
    identity_type: Mapped[str] = mapped_column(String(40), nullable=False, default="phone")
    welcome_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    welcome_link_title: Mapped[str | None] = mapped_column(String(200), nullable=True)
    welcome_link_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    # Round robin: the pool position to try first next time.
    rr_next: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    # WeCom 「联系我」: the state (≤ 30 chars) that comes back in add_external_contact callbacks, and the
    # contact way WeCom made for this code (siyu.wecom.tasks keeps it in step with the code).
    wecom_state: Mapped[str | None] = mapped_column(String(30), nullable=True)
    wecom_config_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    wecom_qr_code: Mapped[str | None] = mapped_column(String(1000), nullable=True)


class ChannelCodeStaff(WorkspaceScoped, Base):
    """One member of a code's staff pool."""

    __tablename__ = "channel_code_staff"
    __table_args__ = (PrimaryKeyConstraint("code_id", "staff_id"),)

    code_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("channel_code.id", ondelete="CASCADE"), nullable=False)
    staff_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("staff.id", ondelete="CASCADE"), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    weight: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    # Most adds per (workspace-local) day through this code; None: no cap.
    daily_cap: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Online hours "HH:MM" in the workspace's time zone; both None: always online. start > end spans midnight.
    hours_start: Mapped[str | None] = mapped_column(String(5), nullable=True)
    hours_end: Mapped[str | None] = mapped_column(String(5), nullable=True)
    # Smooth weighted round robin state (nginx's algorithm).
    wrr_current: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")


class ChannelCodeTag(WorkspaceScoped, Base):
    """A tag put on every contact added through the code."""

    __tablename__ = "channel_code_tag"
    __table_args__ = (PrimaryKeyConstraint("code_id", "tag_id"),)

    code_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("channel_code.id", ondelete="CASCADE"), nullable=False)
    tag_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tag.id", ondelete="CASCADE"), nullable=False)


class ChannelCodeDay(WorkspaceScoped, Base):
    """Per code and local day: link page views (scans) and adds."""

    __tablename__ = "channel_code_day"
    __table_args__ = (PrimaryKeyConstraint("code_id", "day"),)

    code_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("channel_code.id", ondelete="CASCADE"), nullable=False)
    day: Mapped[dt.date] = mapped_column(Date, nullable=False)
    scans: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    adds: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class ChannelCodeStaffDay(WorkspaceScoped, Base):
    """Per code, staff member and local day: adds (what caps and least-loaded rotation read)."""

    __tablename__ = "channel_code_staff_day"
    __table_args__ = (
        PrimaryKeyConstraint("code_id", "staff_id", "day"),
        Index("ix_channel_code_staff_day_staff_id_day", "staff_id", "day"),
    )

    code_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("channel_code.id", ondelete="CASCADE"), nullable=False)
    staff_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("staff.id", ondelete="CASCADE"), nullable=False)
    day: Mapped[dt.date] = mapped_column(Date, nullable=False)
    adds: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class ChannelTouch(IdMixin, WorkspaceScoped, Base):
    """A contact arriving through a channel code. The contact's earliest touch is its first touch (its
    source); `first` marks it when written, so acquisition counts are one indexed range."""

    __tablename__ = "channel_touch"
    __table_args__ = (
        Index("ix_channel_touch_contact_id_at", "contact_id", "at"),
        Index("ix_channel_touch_workspace_id_channel_id_at", "workspace_id", "channel_id", "at"),
        Index("ix_channel_touch_code_id_contact_id", "code_id", "contact_id"),
    )

    contact_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), nullable=False)
    channel_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("channel.id", ondelete="CASCADE"), nullable=False)
    code_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("channel_code.id", ondelete="CASCADE"), nullable=False)
    staff_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True)
    source: Mapped[TouchSource] = mapped_column(_enum(TouchSource, 10), nullable=False)
    first: Mapped[bool] = mapped_column(Boolean, nullable=False)
    # The contact was created by this add (it was not known by any identity before).
    created_contact: Mapped[bool] = mapped_column(Boolean, nullable=False)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
