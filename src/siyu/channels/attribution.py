"""Attribution: a person arrives through a channel code. One path for the link page and WeCom callbacks.

`record_add` runs in the caller's transaction (the caller commits). It locks the code row first (FOR
UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the only write lock), so picking the staff
member and counting the add happen together: two adds can never both take a staff member's last slot.
Lock order is code row, then workspace row (taken by event ingestion), and nothing takes them the other
way round.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session

from siyu.auth.principal import Principal
from siyu.channels import rotation
from siyu.channels.models import (
    Channel,
    ChannelCode,
    ChannelCodeDay,
    ChannelCodeStaff,
    ChannelCodeStaffDay,
    ChannelCodeTag,
    ChannelTouch,
    CodeStatus,
    TouchSource,
)
from siyu.channels.service import bump, get_code
from siyu.contacts import repository as contacts_repo
from siyu.contacts.identities import IdentityError, normalize
from siyu.contacts.models import Contact
from siyu.contacts.service import change_owner
from siyu.delivery.service import staff_add_allowance
from siyu.errors import Conflict, ValidationFailed, validation_error
from siyu.events import service as events
from siyu.events.models import Event
from siyu.events.service import workspace_timezone
from siyu.kit.time import ensure_utc, utcnow
from siyu.staff.models import Staff
from siyu.tags.models import TagSource
from siyu.tags.service import change_tags


class CodePaused(Conflict):
    code = "channel_code_paused"


class NoStaffAvailable(Conflict):
    code = "no_staff_available"


@dataclass(frozen=True, slots=True)
class AddResult:
    contact_id: int
    staff_id: int
    staff_name: str
    created: bool  # a new contact: none of the identities was known
    repeat: bool  # this contact had already come through this code: nothing was counted again
    first_touch: bool  # this add is the contact's first touch (its source)
    used_backup: bool  # every pool member was capped or offline
    welcome_text: str | None
    welcome_link_title: str | None
    welcome_link_url: str | None


def normalize_identities(identities: Mapping[str, object], *, region: str) -> list[tuple[str, str]]:
    if not identities:
        raise validation_error("identities", 'name the person, e.g. {"phone": "13800138000"}')
    pairs: list[tuple[str, str]] = []
    problems = []
    for key, value in identities.items():
        try:
            pairs.append((key, normalize(key, value, region=region)))
        except IdentityError as exc:
            problems.append({"field": f"identities.{key}", "reason": str(exc)})
    if problems:
        raise ValidationFailed("; ".join(f"{p['field']}: {p['reason']}" for p in problems), details=problems)
    return pairs


def _live_contact_ids(session: Session, workspace_id: int, pairs: list[tuple[str, str]]) -> set[int]:
    found = set(contacts_repo.contacts_by_identities(session, workspace_id, pairs).values())
    if not found:
        return set()
    rows = session.execute(select(Contact.id, Contact.merged_into_id).where(Contact.id.in_(found)))
    return {merged or cid for cid, merged in rows}


def _candidates(session: Session, code: ChannelCode, day: dt.date) -> list[rotation.Candidate]:
    rows = session.execute(
        select(ChannelCodeStaff, Staff.is_active)
        .join(Staff, Staff.id == ChannelCodeStaff.staff_id)
        .where(ChannelCodeStaff.code_id == code.id)
        .order_by(ChannelCodeStaff.position)
    )
    entries = list(rows)
    staff_ids = [e.staff_id for e, _ in entries]
    today = dict(
        session.execute(
            select(ChannelCodeStaffDay.staff_id, ChannelCodeStaffDay.adds).where(
                ChannelCodeStaffDay.code_id == code.id, ChannelCodeStaffDay.day == day
            )
        ).all()
    )
    load = dict(
        session.execute(
            select(ChannelCodeStaffDay.staff_id, func.sum(ChannelCodeStaffDay.adds))
            .where(
                ChannelCodeStaffDay.workspace_id == code.workspace_id,
                ChannelCodeStaffDay.staff_id.in_(staff_ids),
                ChannelCodeStaffDay.day == day,
            )
            .group_by(ChannelCodeStaffDay.staff_id)
        ).all()
    )
    # The account's own daily add limit (with its warm-up ramp) caps it on every code at once.
    allowance = {e.staff_id: staff_add_allowance(session, e.staff_id, day) for e, _ in entries}

    def cap(entry: ChannelCodeStaff) -> int | None:
        left = allowance[entry.staff_id]
        if left is None:
            return entry.daily_cap
        account_cap = int(today.get(entry.staff_id, 0)) + left
        return account_cap if entry.daily_cap is None else min(entry.daily_cap, account_cap)

    return [
        rotation.Candidate(
            staff_id=e.staff_id,
            position=e.position,
            weight=e.weight,
            daily_cap=cap(e),
            adds_today=int(today.get(e.staff_id, 0)),
            load_today=int(load.get(e.staff_id) or 0),
            hours_start=e.hours_start,
            hours_end=e.hours_end,
            active=bool(active),
            wrr_current=e.wrr_current,
        )
        for e, active in entries
    ]


def _pick_staff(session: Session, code: ChannelCode, at: dt.datetime, local: dt.datetime) -> tuple[int, bool]:
    """(staff id, used backup). Writes the rotation state; raises NoStaffAvailable."""
    pool = _candidates(session, code, local.date())
    chosen = rotation.pick(code.rotation, pool, rr_next=code.rr_next, local_time=local.time())
    if chosen.staff_id is not None:
        code.rr_next = chosen.rr_next
        for staff_id, current in chosen.wrr.items():
            session.execute(
                update(ChannelCodeStaff)
                .where(ChannelCodeStaff.code_id == code.id, ChannelCodeStaff.staff_id == staff_id)
                .values(wrr_current=current)
            )
        return chosen.staff_id, False
    if code.backup_staff_id is not None:
        backup = session.get(Staff, code.backup_staff_id)
        if backup is not None and backup.is_active:
            return backup.id, True
    raise NoStaffAvailable(
        f"channel code {code.name!r}: every staff member of its pool has reached the daily cap or is outside "
        "their online hours, and there is no active backup staff member; raise a cap, widen the hours or "
        "set backup_staff_id"
    )


def record_add(
    session: Session,
    workspace_id: int,
    code: ChannelCode | int,
    identities: Mapping[str, object],
    *,
    occurred_at: dt.datetime,
    source: TouchSource | str = TouchSource.link,
    staff_hint: int | None = None,
    region: str = "CN",
    event_id: str | None = None,
) -> AddResult:
    """A person (named by `identities`, e.g. {"phone": "138..."}) came through `code`.

    Picks the staff member (or takes `staff_hint`: WeCom says whom the person added), counts the add,
    stores a `contact.added` event through event ingestion (so the person is found or created, and
    merged, like any event), records the touch, sets the contact's source and owner when it has none,
    and puts the code's tags on. A contact already brought by this code is a repeat: it gets the same
    staff member again and nothing is counted twice.
    """
    source = TouchSource(source)
    occurred_at = ensure_utc(occurred_at)
    pairs = normalize_identities(identities, region=region)
    code_id = code if isinstance(code, int) else code.id
    locked = get_code(session, workspace_id, code_id, for_update=True)
    if locked.status is CodeStatus.paused:
        raise CodePaused(f"channel code {locked.name!r} is paused and takes no new contacts; resume it first")
    channel = session.get(Channel, locked.channel_id)
    assert channel is not None
    tz = workspace_timezone(session, workspace_id)
    local = occurred_at.astimezone(tz)
    welcome = (locked.welcome_text, locked.welcome_link_title, locked.welcome_link_url)

    known = _live_contact_ids(session, workspace_id, pairs)
    if known:
        earlier = session.execute(
            select(ChannelTouch.contact_id, ChannelTouch.staff_id)
            .where(ChannelTouch.code_id == locked.id, ChannelTouch.contact_id.in_(known))
            .order_by(ChannelTouch.at.desc(), ChannelTouch.id.desc())
            .limit(1)
        ).first()
        if earlier is not None and earlier.staff_id is not None:
            staff = session.get(Staff, earlier.staff_id)
            assert staff is not None
            return AddResult(earlier.contact_id, staff.id, staff.name, False, True, False, False, *welcome)

    if staff_hint is not None:
        hinted = session.get(Staff, staff_hint)
        if hinted is None or hinted.workspace_id != workspace_id:
            raise validation_error("staff_hint", f"staff {staff_hint} does not exist in this workspace")
        staff_id, used_backup = hinted.id, False
    else:
        staff_id, used_backup = _pick_staff(session, locked, occurred_at, local)
    staff = session.get(Staff, staff_id)
    assert staff is not None

    # The person: found, created or merged by event ingestion, exactly as any event names them.
    event_id = event_id or f"siyu:channel-add:{locked.id}:{secrets.token_hex(8)}"
    now = utcnow()
    properties = {
        "channel": channel.kind.value,
        "channel_id": channel.id,
        "channel_code": str(locked.id),
        "channel_code_name": locked.name,
        "staff_id": staff_id,
        "source": source.value,
    }
    items = events.prepare(
        [
            {
                "id": event_id,
                "type": "contact.added",
                "contact": dict(pairs),
                "timestamp": occurred_at.isoformat(),
                "properties": properties,
            }
        ],
        tz=tz,
        region=region,
        now=now,
    )
    stored = events.store(session, workspace_id, items, now=now)
    contact_id = session.scalar(
        select(Event.contact_id).where(Event.workspace_id == workspace_id, Event.event_id == event_id)
    )
    assert contact_id is not None
    contact = session.get(Contact, contact_id, populate_existing=True)
    assert contact is not None

    first = not session.scalar(select(exists().where(ChannelTouch.contact_id == contact.id)))
    session.add(
        ChannelTouch(
            workspace_id=workspace_id,
            contact_id=contact.id,
            channel_id=channel.id,
            code_id=locked.id,
            staff_id=staff_id,
            source=source,
            first=first,
            created_contact=stored.contacts_created > 0,
            at=occurred_at,
        )
    )
    day = local.date()
    bump(session, ChannelCodeDay, {"workspace_id": workspace_id, "code_id": locked.id, "day": day}, adds=1)
    bump(
        session,
        ChannelCodeStaffDay,
        {"workspace_id": workspace_id, "code_id": locked.id, "staff_id": staff_id, "day": day},
        adds=1,
    )

    if contact.source_channel is None:
        contact.source_channel = channel.kind.value
    system = Principal(workspace_id=workspace_id, scopes=frozenset())
    just_this = select(Contact.id).where(Contact.id == contact.id)
    reason = f"channel code {locked.name!r}"
    if contact.owner_id is None:
        change_owner(session, system, just_this, staff_id, reason)
    tag_ids = list(session.scalars(select(ChannelCodeTag.tag_id).where(ChannelCodeTag.code_id == locked.id)))
    if tag_ids:
        change_tags(session, system, just_this, add=tag_ids, remove=[], reason=reason, source=TagSource.channel)
    session.flush()
    return AddResult(
        contact_id=contact.id,
        staff_id=staff_id,
        staff_name=staff.name,
        created=stored.contacts_created > 0,
        repeat=False,
        first_touch=first,
        used_backup=used_backup,
        welcome_text=welcome[0],
        welcome_link_title=welcome[1],
        welcome_link_url=welcome[2],
    )
