"""Queries of the content domain that read many rows: the library list and the portrait's figures."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, String, cast, func, select
from sqlalchemy.orm import Session

from siyu.content.models import (
    ContentItem,
    ContentItemTag,
    ContentKind,
    ContentPush,
    ContentPushRecipient,
    ContentStatus,
    ContentView,
)
from siyu.events.models import Event
from siyu.kit.sql import select_where_in

ENGAGEMENT_TYPES = ("content.viewed", "content.favorited", "content.commented", "content.shared")


def list_items(
    session: Session,
    workspace_id: int,
    *,
    kind: ContentKind | None = None,
    status: ContentStatus | None = None,
    tag_ids: Sequence[int] = (),
    q: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[ContentItem]:
    """Newest first. Several tags: items carrying all of them. `q`: words all found in the title."""
    statement = select(ContentItem).where(ContentItem.workspace_id == workspace_id)
    if kind is not None:
        statement = statement.where(ContentItem.kind == kind)
    if status is not None:
        statement = statement.where(ContentItem.status == status)
    for tag_id in dict.fromkeys(tag_ids):
        statement = statement.where(
            ContentItem.id.in_(select(ContentItemTag.content_id).where(ContentItemTag.tag_id == tag_id))
        )
    for word in (q or "").split():
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        statement = statement.where(ContentItem.title.ilike(f"%{escaped}%", escape="\\"))
    if before is not None:
        statement = statement.where(ContentItem.id < before)
    return list(session.scalars(statement.order_by(ContentItem.id.desc()).limit(limit)))


def content_id_of_event() -> ColumnElement[Any]:
    """properties.content_id as text on both databases (integrators send it as a string; a number
    sent by an older integration still matches)."""
    return cast(Event.properties["content_id"].as_string(), String)


def _events(workspace_id: int, content_id: str, types: Sequence[str], members: Any) -> Any:
    statement = select(Event.type, Event.contact_id, Event.occurred_at).where(
        Event.workspace_id == workspace_id,
        Event.type.in_(types),
        content_id_of_event() == content_id,
    )
    if members is not None:
        statement = statement.where(Event.contact_id.in_(members))
    return statement


def engagement_counts(session: Session, workspace_id: int, content_id: str, members: Any) -> dict[str, int]:
    sub = _events(workspace_id, content_id, ENGAGEMENT_TYPES, members).subquery()
    rows = session.execute(select(sub.c.type, func.count()).group_by(sub.c.type))
    return {str(t): int(n) for t, n in rows}


def view_times(session: Session, workspace_id: int, content_id: str, members: Any) -> dict[int, list[dt.datetime]]:
    """Each viewer and the times they viewed the item."""
    out: dict[int, list[dt.datetime]] = {}
    for _type, contact_id, occurred_at in session.execute(
        _events(workspace_id, content_id, ["content.viewed"], members)
    ):
        out.setdefault(int(contact_id), []).append(occurred_at)
    return out


def converted_viewers(
    session: Session, workspace_id: int, views: dict[int, list[dt.datetime]], window: dt.timedelta
) -> int:
    """Viewers with an order.paid at or after one of their views and at most `window` after it."""
    if not views:
        return 0
    earliest = min(min(times) for times in views.values())
    sql = (
        "SELECT contact_id, occurred_at FROM event WHERE workspace_id = {p} AND type = 'order.paid' AND contact_id {in}"
    )
    converted: set[int] = set()
    for contact_id, occurred_at in select_where_in(session, sql, [workspace_id], sorted(views)):
        paid = occurred_at if isinstance(occurred_at, dt.datetime) else dt.datetime.fromisoformat(str(occurred_at))
        paid = paid.replace(tzinfo=dt.UTC) if paid.tzinfo is None else paid
        if paid < earliest or contact_id in converted:
            continue
        if any(v <= paid <= v + window for v in views[int(contact_id)]):
            converted.add(int(contact_id))
    return len(converted)


def anonymous_views(session: Session, content_id: int) -> int:
    return int(
        session.scalar(
            select(func.count()).where(ContentView.content_id == content_id, ContentView.contact_id.is_(None))
        )
        or 0
    )


def push_reach(session: Session, content_id: int, members: Any) -> tuple[int, int, int]:
    """(pushes, recipients, recipients who opened their link) over all pushes of the item."""
    pushes = int(session.scalar(select(func.count()).where(ContentPush.content_id == content_id)) or 0)
    recipients = (
        select(ContentPushRecipient.push_id, ContentPushRecipient.contact_id)
        .join(ContentPush, ContentPush.id == ContentPushRecipient.push_id)
        .where(ContentPush.content_id == content_id)
    )
    if members is not None:
        recipients = recipients.where(ContentPushRecipient.contact_id.in_(members))
    sub = recipients.subquery()
    total = int(session.scalar(select(func.count()).select_from(sub)) or 0)
    opened = int(
        session.scalar(
            select(func.count())
            .select_from(sub)
            .where(
                select(ContentView.id)
                .where(ContentView.push_id == sub.c.push_id, ContentView.contact_id == sub.c.contact_id)
                .exists()
            )
        )
        or 0
    )
    return pushes, total, opened
