"""Merging profiles found to be one person. Everything moves to the survivor; nothing is lost."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from siyu.channels.models import ChannelTouch
from siyu.contacts.models import Contact, ContactMerge, Identity, Note, OwnerChange
from siyu.events.models import Event
from siyu.events.repository import record_system_event
from siyu.kit.time import utcnow
from siyu.scripts.models import ScriptUse
from siyu.tags.models import ContactTag, Tag, TagAction, TagChange, TagGroup, TagSource

PROFILE_FIELDS = (
    "name",
    "owner_id",
    "source_channel",
    "consult_question",
    "region",
    "occupation",
    "gender",
    "birthday",
    "birthday_mmdd",
    "timezone",
)


def _snapshot(contact: Contact) -> dict[str, Any]:
    snap: dict[str, Any] = {f: getattr(contact, f) for f in PROFILE_FIELDS}
    snap["first_consult_at"] = contact.first_consult_at
    snap["attributes"] = dict(contact.attributes or {})
    snap["created_at"] = contact.created_at
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in snap.items()}


def merge_contacts(
    session: Session,
    *,
    survivor: Contact,
    merged: Contact,
    reason: str,
    actor_staff_id: int | None = None,
    actor_api_key_id: int | None = None,
) -> ContactMerge:
    """Moves identities, events, notes, tags and tag history of `merged` to `survivor`.

    Profile gaps on the survivor are filled from the merged profile (the survivor's values win where
    both have one); the merged profile as it was is kept in the merge record, and its row stays with
    `merged_into_id` set so old ids still resolve.
    """
    assert survivor.workspace_id == merged.workspace_id and survivor.id != merged.id
    workspace_id = survivor.workspace_id
    snapshot = _snapshot(merged)
    moved: dict[str, int] = {}

    def move(model: Any, name: str) -> None:
        result = session.execute(update(model).where(model.contact_id == merged.id).values(contact_id=survivor.id))
        moved[name] = int(result.rowcount)  # type: ignore[attr-defined]

    move(Identity, "identities")
    move(Event, "events")
    move(Note, "notes")
    move(TagChange, "tag_changes")
    move(OwnerChange, "owner_changes")
    move(ChannelTouch, "channel_touches")
    move(ScriptUse, "script_uses")
    if moved["channel_touches"]:
        _keep_one_first_touch(session, survivor.id)
    moved["tags"] = _move_tags(session, survivor, merged, actor_staff_id, actor_api_key_id)

    for name in PROFILE_FIELDS:
        if getattr(survivor, name) is None and getattr(merged, name) is not None:
            setattr(survivor, name, getattr(merged, name))
    if merged.first_consult_at is not None and (
        survivor.first_consult_at is None or merged.first_consult_at < survivor.first_consult_at
    ):
        survivor.first_consult_at = merged.first_consult_at
    survivor.attributes = {**(merged.attributes or {}), **(survivor.attributes or {})}
    survivor.updated_at = utcnow()

    # Profiles merged into `merged` earlier now point at the survivor: one hop, never a chain.
    session.execute(update(Contact).where(Contact.merged_into_id == merged.id).values(merged_into_id=survivor.id))
    merged.merged_into_id = survivor.id
    merged.owner_id = None
    record = ContactMerge(
        workspace_id=workspace_id,
        survivor_id=survivor.id,
        merged_id=merged.id,
        reason=reason,
        details={"moved": moved, "merged_profile": snapshot},
    )
    session.add(record)
    session.flush()
    record_system_event(
        session,
        workspace_id=workspace_id,
        contact_id=survivor.id,
        type="contact.merged",
        event_id=f"siyu:merge:{record.id}",
        properties={"merged_contact_id": merged.id, "reason": reason},
    )
    return record


def _keep_one_first_touch(session: Session, contact_id: int) -> None:
    """Two profiles each had a first touch; one person has one: the earliest stays first."""
    earliest = session.scalar(
        select(ChannelTouch.id)
        .where(ChannelTouch.contact_id == contact_id)
        .order_by(ChannelTouch.at, ChannelTouch.id)
        .limit(1)
    )
    session.execute(
        update(ChannelTouch)
        .where(ChannelTouch.contact_id == contact_id)
        .values(first=ChannelTouch.id == earliest)
        .execution_options(synchronize_session=False)
    )


def _move_tags(
    session: Session,
    survivor: Contact,
    merged: Contact,
    actor_staff_id: int | None,
    actor_api_key_id: int | None,
) -> int:
    """Gives the survivor the merged profile's tags, except where an exclusive group already has one."""
    rows = session.execute(
        select(Tag, TagGroup.exclusive)
        .join(ContactTag, ContactTag.tag_id == Tag.id)
        .join(TagGroup, TagGroup.id == Tag.group_id)
        .where(ContactTag.contact_id.in_([survivor.id, merged.id]))
        .add_columns(ContactTag.contact_id)
    ).all()
    survivor_tags = {tag.id for tag, _, cid in rows if cid == survivor.id}
    exclusive_groups_held = {tag.group_id for tag, exclusive, cid in rows if cid == survivor.id and exclusive}
    count = 0
    now = utcnow()
    for tag, exclusive, cid in rows:
        if cid != merged.id or tag.id in survivor_tags:
            continue
        if exclusive and tag.group_id in exclusive_groups_held:
            continue
        session.add(ContactTag(workspace_id=survivor.workspace_id, contact_id=survivor.id, tag_id=tag.id))
        session.add(
            TagChange(
                workspace_id=survivor.workspace_id,
                contact_id=survivor.id,
                tag_id=tag.id,
                tag_name=tag.name,
                action=TagAction.added,
                source=TagSource.merge,
                actor_staff_id=actor_staff_id,
                actor_api_key_id=actor_api_key_id,
                reason=f"from merged contact {merged.id}",
                created_at=now,
            )
        )
        if exclusive:
            exclusive_groups_held.add(tag.group_id)
        count += 1
    session.execute(delete(ContactTag).where(ContactTag.contact_id == merged.id))
    return count


def count_live(session: Session, workspace_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Contact)
            .where(Contact.workspace_id == workspace_id, Contact.merged_into_id.is_(None))
        )
        or 0
    )
