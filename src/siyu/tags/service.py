"""Tag groups, tags and tagging. One set-based path serves one contact and a million alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, delete, exists, func, insert, literal, select, update
from sqlalchemy.orm import Session

from siyu.auth.principal import Principal
from siyu.computed.dirty import mark_dirty
from siyu.contacts.models import Contact
from siyu.errors import Conflict, validation_error
from siyu.kit.repository import flush_unique, get_in_workspace
from siyu.kit.time import utcnow
from siyu.tags.models import ContactTag, Tag, TagAction, TagChange, TagGroup, TagSource
from siyu.tags.schemas import TagCreate, TagGroupCreate, TagGroupUpdate, TagUpdate


def get_group(session: Session, workspace_id: int, group_id: int) -> TagGroup:
    return get_in_workspace(session, TagGroup, workspace_id, group_id, "tag group")


def get_tag(session: Session, workspace_id: int, tag_id: int) -> Tag:
    return get_in_workspace(session, Tag, workspace_id, tag_id, "tag")


def create_group(session: Session, workspace_id: int, data: TagGroupCreate) -> TagGroup:
    group = TagGroup(workspace_id=workspace_id, name=data.name, exclusive=data.exclusive)
    session.add(group)
    flush_unique(session, f"a tag group named {data.name!r} already exists")
    return group


def update_group(session: Session, workspace_id: int, group_id: int, data: TagGroupUpdate) -> TagGroup:
    group = get_group(session, workspace_id, group_id)
    if data.exclusive and not group.exclusive:
        holders = session.scalar(
            select(func.count()).select_from(
                select(ContactTag.contact_id)
                .join(Tag, Tag.id == ContactTag.tag_id)
                .where(Tag.group_id == group.id)
                .group_by(ContactTag.contact_id)
                .having(func.count() > 1)
                .subquery()
            )
        )
        if holders:
            raise Conflict(
                f"{holders} contacts hold more than one tag of group {group.name!r}; "
                "remove the extra tags before making it exclusive"
            )
    if data.name is not None:
        group.name = data.name
    if data.exclusive is not None:
        group.exclusive = data.exclusive
    flush_unique(session, f"a tag group named {data.name!r} already exists")
    return group


def create_tag(session: Session, workspace_id: int, data: TagCreate) -> Tag:
    group = get_group(session, workspace_id, data.group_id)
    tag = Tag(workspace_id=workspace_id, group_id=group.id, name=data.name)
    session.add(tag)
    flush_unique(session, f"group {group.name!r} already has a tag named {data.name!r}")
    return tag


def update_tag(session: Session, workspace_id: int, tag_id: int, data: TagUpdate) -> Tag:
    tag = get_tag(session, workspace_id, tag_id)
    if data.name is not None:
        tag.name = data.name
    flush_unique(session, f"this group already has a tag named {data.name!r}")
    return tag


def delete_tag(session: Session, principal: Principal, tag_id: int, *, force: bool) -> int:
    """Deletes a tag. In use, it needs force=True, and each contact's loss is recorded."""
    tag = get_tag(session, principal.workspace_id, tag_id)
    in_use = session.scalar(select(func.count()).select_from(ContactTag).where(ContactTag.tag_id == tag.id)) or 0
    if in_use and not force:
        raise Conflict(f"tag {tag.name!r} is on {in_use} contacts; delete again with force=true to remove it from them")
    if in_use:
        holders = select(ContactTag.contact_id).where(ContactTag.tag_id == tag.id)
        _record(session, principal, holders, tag, TagAction.removed, principal.tag_source, f"tag {tag.name!r} deleted")
    session.execute(delete(ContactTag).where(ContactTag.tag_id == tag.id))
    session.delete(tag)
    session.flush()
    return int(in_use)


def list_groups(session: Session, workspace_id: int) -> list[TagGroup]:
    return list(session.scalars(select(TagGroup).where(TagGroup.workspace_id == workspace_id).order_by(TagGroup.id)))


def list_tags(session: Session, workspace_id: int, group_id: int | None = None) -> list[Tag]:
    q = select(Tag).where(Tag.workspace_id == workspace_id)
    if group_id is not None:
        q = q.where(Tag.group_id == group_id)
    return list(session.scalars(q.order_by(Tag.id)))


def _record(
    session: Session,
    principal: Principal,
    contact_ids: Select[Any],
    tag: Tag,
    action: TagAction,
    source: TagSource,
    reason: str | None,
) -> None:
    session.execute(
        insert(TagChange).from_select(
            [
                "workspace_id",
                "contact_id",
                "tag_id",
                "tag_name",
                "action",
                "source",
                "actor_staff_id",
                "actor_api_key_id",
                "reason",
                "created_at",
            ],
            select(
                literal(principal.workspace_id),
                contact_ids.subquery().c[0],
                literal(tag.id),
                literal(tag.name),
                literal(action.value),
                literal(source.value),
                literal(principal.staff_id),
                literal(principal.api_key_id),
                literal(reason),
                literal(utcnow(), TagChange.created_at.type),
            ),
        )
    )


def change_tags(
    session: Session,
    principal: Principal,
    selection: Select[Any],
    *,
    add: Sequence[int],
    remove: Sequence[int],
    reason: str | None,
    source: TagSource | None = None,
) -> tuple[int, int]:
    """Adds and removes tags on every contact `selection` yields; returns (added, removed) counts.

    Only real changes are made and recorded: adding a tag a contact holds, or removing one it lacks,
    does nothing. Adding a tag of an exclusive group takes the group's other tags off first.
    """
    source = source or principal.tag_source
    ws = principal.workspace_id
    add_tags = [get_tag(session, ws, t) for t in dict.fromkeys(add)]
    remove_tags = [get_tag(session, ws, t) for t in dict.fromkeys(remove)]
    groups = {g.id: g for g in session.scalars(select(TagGroup).where(TagGroup.id.in_({t.group_id for t in add_tags})))}
    seen_exclusive: dict[int, Tag] = {}
    for tag in add_tags:
        group = groups[tag.group_id]
        if group.exclusive:
            if tag.group_id in seen_exclusive:
                other = seen_exclusive[tag.group_id]
                raise validation_error(
                    "add", f"tags {other.name!r} and {tag.name!r} are both in exclusive group {group.name!r}; pick one"
                )
            seen_exclusive[tag.group_id] = tag
    targets = selection.subquery()
    target_ids = select(targets.c[0])
    added = removed = 0

    def holders(tag: Tag) -> Select[Any]:
        return target_ids.where(exists().where(ContactTag.contact_id == targets.c[0], ContactTag.tag_id == tag.id))

    def lacking(tag: Tag) -> Select[Any]:
        return target_ids.where(~exists().where(ContactTag.contact_id == targets.c[0], ContactTag.tag_id == tag.id))

    def take_off(tag: Tag, why: str | None, how: TagSource) -> int:
        ids = holders(tag)
        _record(session, principal, ids, tag, TagAction.removed, how, why)
        result = session.execute(delete(ContactTag).where(ContactTag.tag_id == tag.id, ContactTag.contact_id.in_(ids)))
        return int(result.rowcount)  # type: ignore[attr-defined]

    for tag in remove_tags:
        removed += take_off(tag, reason, source)
    for tag in add_tags:
        if groups[tag.group_id].exclusive:
            siblings = session.scalars(select(Tag).where(Tag.group_id == tag.group_id, Tag.id != tag.id))
            for sibling in siblings:
                removed += take_off(sibling, f"replaced by {tag.name!r} (exclusive group)", TagSource.exclusive)
        ids = lacking(tag)
        _record(session, principal, ids, tag, TagAction.added, source, reason)
        result = session.execute(
            insert(ContactTag)
            .from_select(
                ["workspace_id", "contact_id", "tag_id", "created_at"],
                select(
                    literal(ws), ids.subquery().c[0], literal(tag.id), literal(utcnow(), ContactTag.created_at.type)
                ),
            )
            # SQLAlchemy promises rowcount only for UPDATE and DELETE unless asked (psycopg gives -1).
            .execution_options(preserve_rowcount=True)
        )
        added += int(result.rowcount)  # type: ignore[attr-defined]
    if added or removed:
        mark_dirty(session, ws, target_ids)
        session.execute(
            update(Contact)
            .where(Contact.id.in_(target_ids))
            .values(updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    session.flush()
    return added, removed


def history(session: Session, contact_id: int, limit: int = 200) -> list[TagChange]:
    return list(
        session.scalars(
            select(TagChange)
            .where(TagChange.contact_id == contact_id)
            .order_by(TagChange.created_at.desc(), TagChange.id.desc())
            .limit(limit)
        )
    )


def counts(session: Session, workspace_id: int) -> dict[int, int]:
    rows = session.execute(
        select(ContactTag.tag_id, func.count())
        .where(ContactTag.workspace_id == workspace_id)
        .group_by(ContactTag.tag_id)
    )
    return {tag_id: int(n) for tag_id, n in rows}


def merge_tags(session: Session, principal: Principal, source_id: int, into_id: int) -> tuple[Tag, int, int]:
    """Moves every holder of tag `source_id` to tag `into_id` and deletes the source.

    Each contact's gain and loss is recorded as a tag change saying why. Returns (target tag, contacts
    that held the source, contacts that newly got the target)."""
    source = get_tag(session, principal.workspace_id, source_id)
    target = get_tag(session, principal.workspace_id, into_id)
    if source.id == target.id:
        raise validation_error("into_tag_id", "is the tag being merged; name another tag to merge into")
    holders = select(ContactTag.contact_id).where(ContactTag.tag_id == source.id)
    held = session.scalar(select(func.count()).select_from(holders.subquery())) or 0
    why = f"tag {source.name!r} merged into {target.name!r}"
    # Add first, while the source still marks who its holders are; then take the source off them.
    added, _ = change_tags(session, principal, holders, add=[target.id], remove=[], reason=why)
    change_tags(session, principal, holders, add=[], remove=[source.id], reason=why)
    session.delete(source)
    session.flush()
    return target, int(held), added
