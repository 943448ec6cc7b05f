"""Queries of the groups domain, always scoped by workspace."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from siyu.contacts.models import Contact
from siyu.events.models import Event
from siyu.groups.models import ChatGroup, ChatGroupHelper, ChatGroupMember, GroupCode, GroupPurpose, GroupStatus

CHUNK = 500  # ids per IN (...) list


def list_groups(
    session: Session,
    workspace_id: int,
    *,
    purpose: GroupPurpose | None = None,
    status: GroupStatus | None = None,
    code_id: int | None = None,
) -> list[ChatGroup]:
    q = select(ChatGroup).where(ChatGroup.workspace_id == workspace_id)
    if purpose is not None:
        q = q.where(ChatGroup.purpose == purpose)
    if status is not None:
        q = q.where(ChatGroup.status == status)
    if code_id is not None:
        q = q.where(ChatGroup.code_id == code_id)
    return list(session.scalars(q.order_by(ChatGroup.id)))


def groups_of_code(session: Session, code_id: int) -> list[ChatGroup]:
    return list(
        session.scalars(
            select(ChatGroup).where(ChatGroup.code_id == code_id).order_by(ChatGroup.code_position, ChatGroup.id)
        )
    )


def list_codes(session: Session, workspace_id: int) -> list[GroupCode]:
    return list(session.scalars(select(GroupCode).where(GroupCode.workspace_id == workspace_id).order_by(GroupCode.id)))


def code_by_slug(session: Session, slug: str) -> GroupCode | None:
    return session.scalar(select(GroupCode).where(GroupCode.slug == slug))


def helpers_of(session: Session, group_ids: Collection[int]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {g: [] for g in group_ids}
    if group_ids:
        rows = session.execute(
            select(ChatGroupHelper.group_id, ChatGroupHelper.staff_id)
            .where(ChatGroupHelper.group_id.in_(list(group_ids)))
            .order_by(ChatGroupHelper.staff_id)
        )
        for group_id, staff_id in rows:
            found[group_id].append(staff_id)
    return found


def group_by_key(session: Session, workspace_id: int, key: str) -> ChatGroup | None:
    """The group an event's `group_id` names: its WeCom chat id, else siyu's own group id."""
    group = session.scalar(
        select(ChatGroup).where(ChatGroup.workspace_id == workspace_id, ChatGroup.wecom_chat_id == key)
    )
    if group is None and key.isdigit() and len(key) < 19:
        group = session.scalar(
            select(ChatGroup).where(ChatGroup.workspace_id == workspace_id, ChatGroup.id == int(key))
        )
    return group


def members(
    session: Session, group_id: int, *, current: bool | None = None, limit: int | None = None
) -> list[tuple[ChatGroupMember, str | None]]:
    q = (
        select(ChatGroupMember, Contact.name)
        .join(Contact, Contact.id == ChatGroupMember.contact_id)
        .where(ChatGroupMember.group_id == group_id)
    )
    if current is True:
        q = q.where(ChatGroupMember.left_at.is_(None))
    elif current is False:
        q = q.where(ChatGroupMember.left_at.is_not(None))
    q = q.order_by(ChatGroupMember.joined_at.desc(), ChatGroupMember.contact_id)
    if limit is not None:
        q = q.limit(limit)
    return [(m, name) for m, name in session.execute(q)]


def members_overlapping(
    session: Session, group_ids: Sequence[int], start: dt.datetime, end: dt.datetime
) -> list[ChatGroupMember]:
    """Members who were in the groups at some time in [start, end)."""
    if not group_ids:
        return []
    return list(
        session.scalars(
            select(ChatGroupMember).where(
                ChatGroupMember.group_id.in_(list(group_ids)),
                ChatGroupMember.joined_at < end,
                or_(ChatGroupMember.left_at.is_(None), ChatGroupMember.left_at >= start),
            )
        )
    )


def events_of(
    session: Session,
    workspace_id: int,
    contact_ids: Collection[int],
    types: Collection[str],
    start: dt.datetime,
    end: dt.datetime,
) -> list[tuple[str, int, dt.datetime, dict[str, Any]]]:
    """(type, contact, occurred_at, properties) of these contacts in [start, end), in time order."""
    ids = sorted(contact_ids)
    rows: list[Any] = []
    for n in range(0, len(ids), CHUNK):
        rows.extend(
            session.execute(
                select(Event.type, Event.contact_id, Event.occurred_at, Event.properties, Event.seq).where(
                    Event.workspace_id == workspace_id,
                    Event.contact_id.in_(ids[n : n + CHUNK]),
                    Event.type.in_(list(types)),
                    Event.occurred_at >= start,
                    Event.occurred_at < end,
                )
            ).all()
        )
    rows.sort(key=lambda r: (r[2], r[4]))
    return [(t, c, at, props or {}) for t, c, at, props, _seq in rows]
