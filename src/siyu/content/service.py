"""The content library: items and versions, content tags, pushes with tracked links, views, portraits.

Services never commit (the endpoint or the public page does). Queries that read many rows live in
repository.py.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from siyu.auth.principal import Principal
from siyu.contacts.models import Contact
from siyu.content import repository
from siyu.content.models import (
    ContentItem,
    ContentItemTag,
    ContentKind,
    ContentPush,
    ContentPushRecipient,
    ContentStatus,
    ContentTag,
    ContentTagGroup,
    ContentVersion,
    ContentView,
)
from siyu.content.schemas import DATA_SCHEMAS, ContentCreate, ContentUpdate, PushCreate
from siyu.errors import Conflict, NotFound, ValidationFailed, validation_error
from siyu.events.repository import record_system_event
from siyu.kit.sql import dialect_insert
from siyu.kit.time import utcnow
from siyu.segments import service as segments

# Kinds shown by siyu itself (an article page) rather than redirected to their URL.
RENDERED_KINDS = frozenset({ContentKind.article, ContentKind.case, ContentKind.script})
TEXT_KINDS = frozenset({ContentKind.article, ContentKind.case})
CONVERSION_WINDOW = dt.timedelta(days=7)


# --- validation ------------------------------------------------------------------------------------


def _path(loc: tuple[int | str, ...]) -> str:
    out = "data"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def check_fields(kind: ContentKind, title: str, body: str | None, data: dict[str, Any]) -> dict[str, Any]:
    """The item's fields checked for its kind; returns `data` normalised. 422 names each bad field."""
    details: list[dict[str, Any]] = []
    try:
        parsed = DATA_SCHEMAS[kind].model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            reason = str(error["msg"]).removeprefix("Value error, ")
            details.append({"field": _path(tuple(error["loc"])), "reason": reason})
        parsed = None
    if kind in TEXT_KINDS and not (body or "").strip():
        details.append({"field": "body", "reason": f"a {kind.value} needs its text in body"})
    if not title.strip():
        details.append({"field": "title", "reason": "must not be empty"})
    if details:
        message = "; ".join(f"{d['field']}: {d['reason']}" for d in details[:5])
        raise ValidationFailed(message, details=details)
    assert parsed is not None
    return parsed.model_dump(exclude_none=True)


# --- items -----------------------------------------------------------------------------------------


def get_item(session: Session, workspace_id: int, content_id: int, *, for_update: bool = False) -> ContentItem:
    statement = select(ContentItem).where(ContentItem.id == content_id, ContentItem.workspace_id == workspace_id)
    if for_update:
        statement = statement.with_for_update()
    item = session.scalars(statement).one_or_none()
    if item is None:
        raise NotFound(f"content item {content_id} not found")
    return item


def _check_tags(session: Session, workspace_id: int, tag_ids: list[int]) -> list[int]:
    wanted = sorted(set(tag_ids))
    if not wanted:
        return []
    found = set(
        session.scalars(select(ContentTag.id).where(ContentTag.workspace_id == workspace_id, ContentTag.id.in_(wanted)))
    )
    missing = [t for t in wanted if t not in found]
    if missing:
        raise validation_error("tag_ids", f"no content tag with id {missing[0]}; list them at /content/tag-groups")
    return wanted


def _set_tags(session: Session, item: ContentItem, tag_ids: list[int]) -> None:
    session.execute(delete(ContentItemTag).where(ContentItemTag.content_id == item.id))
    session.add_all(ContentItemTag(workspace_id=item.workspace_id, content_id=item.id, tag_id=t) for t in tag_ids)


def _snapshot(session: Session, item: ContentItem, principal: Principal, now: dt.datetime) -> None:
    session.add(
        ContentVersion(
            workspace_id=item.workspace_id,
            content_id=item.id,
            version=item.version,
            title=item.title,
            body=item.body,
            data=item.data,
            status=item.status,
            staff_id=principal.staff_id,
            api_key_id=principal.api_key_id,
            created_at=now,
        )
    )


def create_item(session: Session, principal: Principal, data: ContentCreate) -> ContentItem:
    clean = check_fields(data.kind, data.title, data.body, data.data)
    tag_ids = _check_tags(session, principal.workspace_id, data.tag_ids)
    now = utcnow()
    item = ContentItem(
        workspace_id=principal.workspace_id,
        kind=data.kind,
        title=data.title,
        body=data.body,
        data=clean,
        status=data.status,
        version=1,
        created_by_staff_id=principal.staff_id,
        updated_by_staff_id=principal.staff_id,
        created_at=now,
        updated_at=now,
    )
    session.add(item)
    session.flush()
    _set_tags(session, item, tag_ids)
    _snapshot(session, item, principal, now)
    session.flush()
    return item


def update_item(session: Session, principal: Principal, content_id: int, data: ContentUpdate) -> ContentItem:
    """Applies the fields sent. A change of title, body, data or status is a new version (kept in
    content_version with who made it); a change of tags alone is not. Nothing changed: no new version."""
    item = get_item(session, principal.workspace_id, content_id, for_update=True)
    sent = data.model_fields_set
    title = data.title if "title" in sent and data.title is not None else item.title
    body = data.body if "body" in sent else item.body
    raw = data.data if "data" in sent and data.data is not None else item.data
    status = data.status if "status" in sent and data.status is not None else item.status
    clean = check_fields(item.kind, title, body, raw)
    if "tag_ids" in sent and data.tag_ids is not None:
        tag_ids = _check_tags(session, principal.workspace_id, data.tag_ids)
        current = sorted(t.id for t in tags_of(session, [item.id]).get(item.id, []))
        if current != tag_ids:
            _set_tags(session, item, tag_ids)
    if (title, body, clean, status) != (item.title, item.body, item.data, item.status):
        now = utcnow()
        item.title, item.body, item.data, item.status = title, body, clean, status
        item.version += 1
        item.updated_by_staff_id = principal.staff_id
        item.updated_at = now
        session.flush()
        _snapshot(session, item, principal, now)
    session.flush()
    return item


def archive_item(session: Session, principal: Principal, content_id: int) -> ContentItem:
    return update_item(session, principal, content_id, ContentUpdate(status=ContentStatus.archived))


def list_versions(session: Session, item: ContentItem) -> list[ContentVersion]:
    return list(
        session.scalars(
            select(ContentVersion).where(ContentVersion.content_id == item.id).order_by(ContentVersion.version.desc())
        )
    )


def tags_of(session: Session, content_ids: list[int]) -> dict[int, list[ContentTag]]:
    out: dict[int, list[ContentTag]] = {}
    if not content_ids:
        return out
    rows = session.execute(
        select(ContentItemTag.content_id, ContentTag)
        .join(ContentTag, ContentTag.id == ContentItemTag.tag_id)
        .where(ContentItemTag.content_id.in_(content_ids))
        .order_by(ContentTag.group_id, ContentTag.name)
    )
    for content_id, tag in rows:
        out.setdefault(content_id, []).append(tag)
    return out


# --- content tags ----------------------------------------------------------------------------------


def list_tag_groups(session: Session, workspace_id: int) -> list[tuple[ContentTagGroup, list[ContentTag]]]:
    groups = list(
        session.scalars(
            select(ContentTagGroup).where(ContentTagGroup.workspace_id == workspace_id).order_by(ContentTagGroup.id)
        )
    )
    tags: dict[int, list[ContentTag]] = {}
    for tag in session.scalars(
        select(ContentTag).where(ContentTag.workspace_id == workspace_id).order_by(ContentTag.name)
    ):
        tags.setdefault(tag.group_id, []).append(tag)
    return [(g, tags.get(g.id, [])) for g in groups]


def create_tag_group(session: Session, principal: Principal, name: str) -> ContentTagGroup:
    exists = session.scalar(
        select(ContentTagGroup.id).where(
            ContentTagGroup.workspace_id == principal.workspace_id, ContentTagGroup.name == name
        )
    )
    if exists is not None:
        raise Conflict(f"a content tag group named {name!r} exists already (id {exists})")
    group = ContentTagGroup(workspace_id=principal.workspace_id, name=name, created_at=utcnow())
    session.add(group)
    session.flush()
    return group


def get_tag_group(session: Session, workspace_id: int, group_id: int) -> ContentTagGroup:
    group = session.get(ContentTagGroup, group_id)
    if group is None or group.workspace_id != workspace_id:
        raise NotFound(f"content tag group {group_id} not found")
    return group


def create_tag(session: Session, principal: Principal, group_id: int, name: str) -> ContentTag:
    group = get_tag_group(session, principal.workspace_id, group_id)
    exists = session.scalar(select(ContentTag.id).where(ContentTag.group_id == group.id, ContentTag.name == name))
    if exists is not None:
        raise Conflict(f"the group already has a tag named {name!r} (id {exists})")
    tag = ContentTag(workspace_id=principal.workspace_id, group_id=group.id, name=name, created_at=utcnow())
    session.add(tag)
    session.flush()
    return tag


def delete_tag(session: Session, principal: Principal, tag_id: int) -> None:
    tag = session.get(ContentTag, tag_id)
    if tag is None or tag.workspace_id != principal.workspace_id:
        raise NotFound(f"content tag {tag_id} not found")
    session.delete(tag)
    session.flush()


def delete_tag_group(session: Session, principal: Principal, group_id: int) -> None:
    session.delete(get_tag_group(session, principal.workspace_id, group_id))
    session.flush()


# --- tracked links ---------------------------------------------------------------------------------


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def _key(secret: bytes, purpose: str) -> bytes:
    return hmac.new(secret, f"siyu.content.{purpose}".encode(), hashlib.sha256).digest()


def _mac(secret: bytes, purpose: str, message: str) -> str:
    digest = hmac.new(_key(secret, purpose), message.encode(), hashlib.sha256).digest()[:12]  # 96 bits
    return base64.urlsafe_b64encode(digest).decode()


def make_token(secret: bytes, push_id: int, contact_id: int | None) -> str:
    """`<push>.<contact or 0>.<mac>`: ids in base 36, then 96 bits of HMAC-SHA256 under a key derived
    from the server secret. The ids can be read; without the secret no other valid token can be made."""
    body = f"{_b36(push_id)}.{_b36(contact_id or 0)}"
    return f"{body}.{_mac(secret, 'link', body)}"


def parse_token(secret: bytes, token: str) -> tuple[int, int | None] | None:
    parts = token.split(".")
    if len(parts) != 3 or not all(parts) or len(token) > 64:
        return None
    try:
        push_id, contact_id = int(parts[0], 36), int(parts[1], 36)
    except ValueError:
        return None
    if not hmac.compare_digest(parts[2], _mac(secret, "link", f"{parts[0]}.{parts[1]}")):
        return None
    return push_id, (contact_id or None)


def viewer_cookie(secret: bytes, workspace_id: int, contact_id: int) -> str:
    body = f"{_b36(workspace_id)}.{_b36(contact_id)}"
    return f"{body}.{_mac(secret, 'viewer', body)}"


def parse_viewer_cookie(secret: bytes, value: str | None, workspace_id: int) -> int | None:
    parts = (value or "").split(".")
    if len(parts) != 3:
        return None
    if not hmac.compare_digest(parts[2], _mac(secret, "viewer", f"{parts[0]}.{parts[1]}")):
        return None
    try:
        if int(parts[0], 36) != workspace_id:
            return None
        return int(parts[1], 36) or None
    except ValueError:
        return None


@dataclass
class Link:
    contact_id: int | None
    group_id: int | None
    token: str


def push_links(secret: bytes, push: ContentPush, contact_ids: list[int]) -> list[Link]:
    if push.group_id is not None:
        return [Link(None, push.group_id, make_token(secret, push.id, None))]
    return [Link(c, None, make_token(secret, push.id, c)) for c in contact_ids]


def _push_contacts(session: Session, principal: Principal, data: PushCreate) -> list[int]:
    if data.segment_id is not None:
        segment = segments.get_segment(session, principal.workspace_id, data.segment_id)
        return segments.list_member_ids(session, segment, principal, after=None, limit=1_000_000)
    if data.contact_ids is None:
        return []
    wanted = list(dict.fromkeys(data.contact_ids))
    statement = select(Contact.id).where(
        Contact.workspace_id == principal.workspace_id, Contact.id.in_(wanted), Contact.merged_into_id.is_(None)
    )
    if principal.owned_contacts_only is not None:
        statement = statement.where(Contact.owner_id == principal.owned_contacts_only)
    found = set(session.scalars(statement))
    missing = [c for c in wanted if c not in found]
    if missing:
        raise validation_error("contact_ids", f"no contact with id {missing[0]} in this workspace")
    return wanted


def create_push(
    session: Session, principal: Principal, content_id: int, data: PushCreate, secret: bytes
) -> tuple[ContentPush, list[Link]]:
    """Records a push of a published item and returns its links: one per contact, or one for the group."""
    item = get_item(session, principal.workspace_id, content_id)
    if item.status is not ContentStatus.published:
        raise Conflict(f"content item {item.id} is {item.status.value}; publish it before pushing it")
    contact_ids = _push_contacts(session, principal, data)
    push = ContentPush(
        workspace_id=principal.workspace_id,
        content_id=item.id,
        content_version=item.version,
        source=data.source,
        channel=data.channel,
        group_id=data.group_id,
        recipient_count=len(contact_ids),
        staff_id=principal.staff_id,
        api_key_id=principal.api_key_id,
        created_at=utcnow(),
    )
    session.add(push)
    session.flush()
    if contact_ids:
        session.execute(
            insert(ContentPushRecipient),
            [{"workspace_id": principal.workspace_id, "push_id": push.id, "contact_id": c} for c in contact_ids],
        )
    return push, push_links(secret, push, contact_ids)


def get_push(session: Session, workspace_id: int, push_id: int) -> ContentPush:
    push = session.get(ContentPush, push_id)
    if push is None or push.workspace_id != workspace_id:
        raise NotFound(f"push {push_id} not found")
    return push


def list_pushes(session: Session, item: ContentItem, limit: int = 50) -> list[ContentPush]:
    return list(
        session.scalars(
            select(ContentPush).where(ContentPush.content_id == item.id).order_by(ContentPush.id.desc()).limit(limit)
        )
    )


def push_recipients(session: Session, push: ContentPush) -> list[int]:
    return list(
        session.scalars(
            select(ContentPushRecipient.contact_id)
            .where(ContentPushRecipient.push_id == push.id)
            .order_by(ContentPushRecipient.contact_id)
        )
    )


def record_view(session: Session, push: ContentPush, contact_id: int | None, now: dt.datetime | None = None) -> bool:
    """Counts one open of a push's link: at most one per (push, viewer, minute). A view with a contact
    is also the event `content.viewed` {content_id, push_id, channel, group_id?} of that contact.
    Returns whether it counted (False: the same viewer opened the same push within this minute)."""
    now = now or utcnow()
    minute = int(now.timestamp()) // 60
    if contact_id is not None:
        live = session.scalar(
            select(Contact.id).where(Contact.id == contact_id, Contact.workspace_id == push.workspace_id)
        )
        if live is None:
            contact_id = None  # deleted since the push: count it for the group, or not at all
    if contact_id is None and push.group_id is None:
        return False
    viewer = f"c{contact_id}" if contact_id is not None else f"g{push.group_id}"
    upsert = dialect_insert(session)
    inserted = session.execute(
        upsert(ContentView)
        .values(
            workspace_id=push.workspace_id,
            push_id=push.id,
            content_id=push.content_id,
            viewer=viewer,
            minute=minute,
            contact_id=contact_id,
            group_id=push.group_id,
            viewed_at=now,
        )
        .on_conflict_do_nothing(index_elements=["push_id", "viewer", "minute"])
        .returning(ContentView.id)
    ).scalar_one_or_none()
    if inserted is None:
        return False
    if contact_id is not None:
        properties: dict[str, Any] = {"content_id": str(push.content_id), "push_id": push.id, "channel": push.channel}
        if push.group_id is not None:
            properties["group_id"] = str(push.group_id)
        record_system_event(
            session,
            workspace_id=push.workspace_id,
            contact_id=contact_id,
            type="content.viewed",
            event_id=f"siyu:content.viewed:{push.id}:{contact_id}:{minute}",
            properties=properties,
            occurred_at=now,
        )
    return True


# --- portrait --------------------------------------------------------------------------------------


@dataclass
class Portrait:
    pushes: int
    recipients: int
    views: int
    unique_viewers: int
    anonymous_group_views: int
    favorites: int
    comments: int
    shares: int
    converted: int
    viewed_recipients: int

    @property
    def conversion_rate(self) -> float | None:
        return round(self.converted / self.unique_viewers, 4) if self.unique_viewers else None

    @property
    def open_rate(self) -> float | None:
        return round(self.viewed_recipients / self.recipients, 4) if self.recipients else None


def portrait(session: Session, item: ContentItem, members: Any = None) -> Portrait:
    """The item's engagement, from the event store: content.viewed / favorited / commented / shared
    events whose content_id is this item (from tracked links and from integrators alike), plus opens
    of group links by unidentified viewers. `members` (a select of contact ids) narrows everything to
    those contacts (a segment); anonymous group views are then left out."""
    counts = repository.engagement_counts(session, item.workspace_id, str(item.id), members)
    views = repository.view_times(session, item.workspace_id, str(item.id), members)
    converted = repository.converted_viewers(session, item.workspace_id, views, CONVERSION_WINDOW)
    anonymous = 0 if members is not None else repository.anonymous_views(session, item.id)
    pushes, recipients, viewed_recipients = repository.push_reach(session, item.id, members)
    return Portrait(
        pushes=pushes,
        recipients=recipients,
        views=counts.get("content.viewed", 0) + anonymous,
        unique_viewers=len(views),
        anonymous_group_views=anonymous,
        favorites=counts.get("content.favorited", 0),
        comments=counts.get("content.commented", 0),
        shares=counts.get("content.shared", 0),
        converted=converted,
        viewed_recipients=viewed_recipients,
    )
