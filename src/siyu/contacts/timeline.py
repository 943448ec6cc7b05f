"""A contact's whole story, newest first: events, notes, tag changes, merges, owner changes and deliveries
in one list."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, or_, select, true
from sqlalchemy.orm import Session

from siyu.contacts.models import ContactMerge, Note, OwnerChange
from siyu.contacts.schemas import TimelineEntry
from siyu.events.models import Event
from siyu.kit.schemas import decode_cursor, encode_cursor
from siyu.tags.models import TagChange

KIND_ORDER = {"event": 0, "note": 1, "tag_change": 2, "merge": 3, "owner_change": 4, "delivery": 5}


def timeline(
    session: Session, contact_id: int, *, cursor: str | None, limit: int
) -> tuple[list[TimelineEntry], str | None]:
    before: tuple[dt.datetime, int, int] | None = None
    if cursor:
        at, kind_rank, row_id = decode_cursor(cursor, 3)
        before = (dt.datetime.fromisoformat(at), int(kind_rank), int(row_id))

    def older(time_col: Any, id_col: Any, kind: str) -> Any:
        """Rows that sort after the cursor in (time, kind, id) descending order."""
        if before is None:
            return true()
        at, rank, row_id = before
        mine = KIND_ORDER[kind]
        if mine < rank:
            return time_col <= at
        if mine > rank:
            return time_col < at
        return or_(time_col < at, and_(time_col == at, id_col < row_id))

    entries: list[tuple[tuple[dt.datetime, int, int], TimelineEntry]] = []

    def add(at: dt.datetime, kind: str, row_id: int, summary: str, data: dict[str, Any]) -> None:
        entries.append(
            ((at, KIND_ORDER[kind], row_id), TimelineEntry(kind=kind, at=at, id=row_id, summary=summary, data=data))
        )

    for ev in session.scalars(
        select(Event)
        .where(Event.contact_id == contact_id, older(Event.occurred_at, Event.id, "event"))
        .order_by(Event.occurred_at.desc(), Event.id.desc())
        .limit(limit + 1)
    ):
        add(
            ev.occurred_at,
            "event",
            ev.id,
            ev.type,
            {"type": ev.type, "seq": ev.seq, "event_id": ev.event_id, "properties": ev.properties},
        )
    for note in session.scalars(
        select(Note)
        .where(Note.contact_id == contact_id, older(Note.created_at, Note.id, "note"))
        .order_by(Note.created_at.desc(), Note.id.desc())
        .limit(limit + 1)
    ):
        add(
            note.created_at,
            "note",
            note.id,
            note.body[:200],
            {"body": note.body, "author_staff_id": note.author_staff_id},
        )
    for change in session.scalars(
        select(TagChange)
        .where(TagChange.contact_id == contact_id, older(TagChange.created_at, TagChange.id, "tag_change"))
        .order_by(TagChange.created_at.desc(), TagChange.id.desc())
        .limit(limit + 1)
    ):
        add(
            change.created_at,
            "tag_change",
            change.id,
            f"{change.action.value} {change.tag_name}",
            {
                "tag_id": change.tag_id,
                "tag_name": change.tag_name,
                "action": change.action.value,
                "source": change.source.value,
                "actor_staff_id": change.actor_staff_id,
                "actor_api_key_id": change.actor_api_key_id,
                "reason": change.reason,
            },
        )
    for merge in session.scalars(
        select(ContactMerge)
        .where(ContactMerge.survivor_id == contact_id, older(ContactMerge.created_at, ContactMerge.id, "merge"))
        .order_by(ContactMerge.created_at.desc(), ContactMerge.id.desc())
        .limit(limit + 1)
    ):
        add(
            merge.created_at,
            "merge",
            merge.id,
            f"merged contact {merge.merged_id}",
            {"merged_id": merge.merged_id, "reason": merge.reason, **merge.details},
        )
    for handover in session.scalars(
        select(OwnerChange)
        .where(
            OwnerChange.contact_id == contact_id,
            older(OwnerChange.created_at, OwnerChange.id, "owner_change"),
        )
        .order_by(OwnerChange.created_at.desc(), OwnerChange.id.desc())
        .limit(limit + 1)
    ):
        add(
            handover.created_at,
            "owner_change",
            handover.id,
            f"owner {handover.from_staff_id or '-'} -> {handover.to_staff_id or '-'}",
            {
                "from_staff_id": handover.from_staff_id,
                "to_staff_id": handover.to_staff_id,
                "actor_staff_id": handover.actor_staff_id,
                "actor_api_key_id": handover.actor_api_key_id,
                "reason": handover.reason,
            },
        )
    from siyu.delivery.models import Delivery  # here: contacts must not import delivery at module level

    for delivery in session.scalars(
        select(Delivery)
        .where(Delivery.contact_id == contact_id, older(Delivery.created_at, Delivery.id, "delivery"))
        .order_by(Delivery.created_at.desc(), Delivery.id.desc())
        .limit(limit + 1)
    ):
        status = delivery.status.value
        shown = {"channel": delivery.channel.value, "source": f"{delivery.source} {delivery.step}"}
        if delivery.reason:
            shown["reason"] = delivery.reason
        if delivery.text:
            shown["text"] = delivery.text[:80]
        add(
            delivery.created_at,
            "delivery",
            delivery.id,
            f"{status} via {delivery.channel.value}" + (f" ({delivery.reason})" if delivery.reason else ""),
            {
                # type/properties: how the console's timeline shows an entry it has no own row for
                "type": f"delivery.{status}",
                "properties": shown,
                "status": status,
                "channel": delivery.channel.value,
                "source": delivery.source,
                "step": delivery.step,
                "entry": delivery.entry,
                "reason": delivery.reason,
                "detail": delivery.detail,
                "retry_at": delivery.retry_at.isoformat() if delivery.retry_at else None,
                "text": delivery.text,
                "content_id": delivery.content_id,
                "link": delivery.link,
                "staff_id": delivery.staff_id,
            },
        )
    entries.sort(key=lambda pair: pair[0], reverse=True)
    page = entries[:limit]
    next_cursor = None
    if len(entries) > limit:
        at, rank, row_id = page[-1][0]
        next_cursor = encode_cursor([at.isoformat(), rank, row_id])
    return [entry for _, entry in page], next_cursor
