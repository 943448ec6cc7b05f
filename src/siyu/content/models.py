"""The content library: items, their versions, content tags, pushes and the views of tracked links.

Content tags (topics, stage fit, industry, ...) are separate from contact tags: they describe content,
not people. Every edit of an item bumps `version` and keeps the previous state in `content_version`.
A push (one item sent to some contacts or to one group) is a `content_push` row; its tracked links
are signed tokens derived from (push, contact) and need no row of their own.
"""

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
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, UTCDateTime
from siyu.kit.models import CreatedAtMixin, IdMixin, WorkspaceScoped
from siyu.kit.time import utcnow


class ContentKind(enum.StrEnum):
    article = "article"  # 文章: body is the text
    script = "script"  # 话术: data = {"question": str, "answers": [str, ...]}
    case = "case"  # 案例: body is the text
    material = "material"  # 素材 (image/file/poster): data = {"url", "mime"}
    product = "product"  # 商品链接: data = {"url"}
    mini_program = "mini_program"  # 小程序: data = {"appid", "path"} or {"url"}
    video = "video"  # 视频链接: data = {"url"}


class ContentStatus(enum.StrEnum):
    draft = "draft"
    published = "published"
    archived = "archived"


def _enum(cls: type[enum.StrEnum], length: int) -> Enum:
    return Enum(
        cls, native_enum=False, length=length, validate_strings=True, values_callable=lambda e: [m.value for m in e]
    )


class ContentItem(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    __tablename__ = "content_item"
    __table_args__ = (Index("ix_content_item_workspace_id_kind_status", "workspace_id", "kind", "status"),)

    kind: Mapped[ContentKind] = mapped_column(_enum(ContentKind, 20), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    body: Mapped[str | None] = mapped_column(Text, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    status: Mapped[ContentStatus] = mapped_column(_enum(ContentStatus, 10), nullable=False)
    # Bumped on every edit; the state before each edit is kept in content_version.
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_by_staff_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True
    )
    updated_by_staff_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True
    )
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)


class ContentVersion(IdMixin, WorkspaceScoped, Base):
    """One version of an item as it was saved (the current one included), and who saved it."""

    __tablename__ = "content_version"
    __table_args__ = (UniqueConstraint("content_id", "version"),)

    content_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("content_item.id", ondelete="CASCADE"), nullable=False
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    body: Mapped[str | None] = mapped_column(Text, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    status: Mapped[ContentStatus] = mapped_column(_enum(ContentStatus, 10), nullable=False)
    staff_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True)
    api_key_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("api_key.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class ContentTagGroup(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    """A dimension of content tags: 主题 topics, 阶段 stage fit, 行业 industry, ..."""

    __tablename__ = "content_tag_group"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    name: Mapped[str] = mapped_column(String(100), nullable=False)


class ContentTag(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    __tablename__ = "content_tag"
    __table_args__ = (UniqueConstraint("workspace_id", "group_id", "name"),)

    group_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("content_tag_group.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False)


class ContentItemTag(WorkspaceScoped, Base):
    __tablename__ = "content_item_tag"
    __table_args__ = (
        PrimaryKeyConstraint("content_id", "tag_id"),
        Index("ix_content_item_tag_tag_id_content_id", "tag_id", "content_id"),
    )

    content_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("content_item.id", ondelete="CASCADE"), nullable=False
    )
    tag_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("content_tag.id", ondelete="CASCADE"), nullable=False)


class ContentPush(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    """One push of an item to some contacts or to one group: who, what (which version), when, from where."""

    __tablename__ = "content_push"
    __table_args__ = (Index("ix_content_push_content_id_created_at", "content_id", "created_at"),)

    content_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("content_item.id", ondelete="CASCADE"), nullable=False
    )
    content_version: Mapped[int] = mapped_column(Integer, nullable=False)
    # "manual", "broadcast:<id>", "journey:<id>", ... (free text, 100 chars).
    source: Mapped[str] = mapped_column(String(100), nullable=False)
    # How it reached people: "wecom", "sms", "email", ... recorded on each view.
    channel: Mapped[str] = mapped_column(String(50), nullable=False)
    # A push to a group (社群): the group's id; no foreign key so this domain does not depend on groups.
    group_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    recipient_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    staff_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True)
    api_key_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("api_key.id", ondelete="SET NULL"), nullable=True
    )


class ContentPushRecipient(WorkspaceScoped, Base):
    """A contact a push was sent to (open rate = viewers / recipients)."""

    __tablename__ = "content_push_recipient"
    __table_args__ = (
        PrimaryKeyConstraint("push_id", "contact_id"),
        Index("ix_content_push_recipient_contact_id", "contact_id"),
    )

    push_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("content_push.id", ondelete="CASCADE"), nullable=False)
    contact_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), nullable=False)


class ContentView(IdMixin, WorkspaceScoped, Base):
    """A counted open of a tracked link (bots and previews are not recorded).

    Unique per (push, viewer, minute): a reload within the same minute is the same view. `viewer` is
    "c<contact id>" for an identified viewer and "g<group id>" for an anonymous open of a group link.
    Views with a contact are also in the event store as `content.viewed`.
    """

    __tablename__ = "content_view"
    __table_args__ = (
        UniqueConstraint("push_id", "viewer", "minute"),
        Index("ix_content_view_content_id_viewed_at", "content_id", "viewed_at"),
    )

    push_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("content_push.id", ondelete="CASCADE"), nullable=False)
    content_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("content_item.id", ondelete="CASCADE"), nullable=False
    )
    viewer: Mapped[str] = mapped_column(String(24), nullable=False)
    minute: Mapped[int] = mapped_column(BigInteger, nullable=False)  # unix time // 60
    contact_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), nullable=True
    )
    group_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    viewed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
