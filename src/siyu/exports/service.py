"""Contact export: the same filters as GET /api/v1/contacts, read in id order a batch at a time."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.auth.principal import Principal
from siyu.contacts import attributes as attrs
from siyu.contacts.identities import STANDARD_IDENTITY_TYPES
from siyu.contacts.models import Contact
from siyu.contacts.repository import ContactFilter, filtered
from siyu.events.service import workspace_timezone
from siyu.exports.writers import write_csv, write_xlsx
from siyu.kit.sql import select_where_in
from siyu.staff.models import Staff
from siyu.tags.models import Tag, TagGroup

BATCH = 2000
PROFILE = ("source_channel", "first_consult_at", "consult_question", "region", "occupation", "gender", "birthday")
FORMATS = ("csv", "xlsx")


def _identity_types(session: Session, workspace_id: int) -> list[str]:
    found = {
        str(t)
        for (t,) in session.connection().exec_driver_sql(
            "SELECT DISTINCT type FROM identity WHERE workspace_id = " + ("?" if _sqlite(session) else "%s"),
            (workspace_id,),
        )
    }
    return [t for t in STANDARD_IDENTITY_TYPES if t in found] + sorted(found - set(STANDARD_IDENTITY_TYPES))


def _sqlite(session: Session) -> bool:
    return session.connection().dialect.name == "sqlite"


def rows(session: Session, principal: Principal, flt: ContactFilter, *, typed: bool) -> Iterator[list[Any]]:
    """The header, then one list per contact. `typed`: dates and times as values (xlsx), else as text.

    Times are the workspace's local time; identities of one type are joined with "; ", tags are written
    group:tag and joined with ", " (the import reads all of these back)."""
    ws = principal.workspace_id
    defs = attrs.definitions(session, ws)
    tz = workspace_timezone(session, ws)
    identity_types = _identity_types(session, ws)
    attribute_keys = [d.key for d in sorted(defs.values(), key=lambda d: d.id)]
    staff = {s.id: (s.email, s.name) for s in session.scalars(select(Staff).where(Staff.workspace_id == ws))}
    groups = {g.id: g.name for g in session.scalars(select(TagGroup).where(TagGroup.workspace_id == ws))}
    tag_names = {
        t.id: f"{groups[t.group_id]}:{t.name}" for t in session.scalars(select(Tag).where(Tag.workspace_id == ws))
    }
    yield [
        "id",
        "name",
        *(t if t in STANDARD_IDENTITY_TYPES else f"identity:{t}" for t in identity_types),
        *PROFILE,
        *attribute_keys,
        "tags",
        "owner",
        "owner_name",
        "created_at",
    ]
    columns = [Contact.id, Contact.name, *(getattr(Contact, c) for c in PROFILE), Contact.birthday_mmdd]
    columns += [Contact.attributes, Contact.owner_id, Contact.created_at]
    base = filtered(select(*columns), ws, flt, principal.owned_contacts_only, defs)
    last_id = 0
    while True:
        batch = session.execute(base.where(Contact.id > last_id).order_by(Contact.id).limit(BATCH)).all()
        if not batch:
            return
        ids = [r.id for r in batch]
        last_id = ids[-1]
        identities: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        sql = "SELECT contact_id, type, value FROM identity WHERE contact_id {in} ORDER BY id"
        for cid, itype, value in select_where_in(session, sql, [], ids):
            identities[cid][itype].append(value)
        tags: dict[int, list[str]] = defaultdict(list)
        for cid, tag_id in select_where_in(
            session, "SELECT contact_id, tag_id FROM contact_tag WHERE contact_id {in}", [], ids
        ):
            tags[cid].append(tag_names[tag_id])
        for r in batch:
            mine = identities.get(r.id, {})
            owner = staff.get(r.owner_id) if r.owner_id is not None else None
            attributes = r.attributes or {}
            yield [
                r.id,
                r.name,
                *("; ".join(mine.get(t, [])) or None for t in identity_types),
                r.source_channel,
                _time(r.first_consult_at, tz, typed),
                r.consult_question,
                r.region,
                r.occupation,
                r.gender.value if r.gender is not None else None,
                _birthday(r.birthday, r.birthday_mmdd, typed),
                *(attributes.get(k) for k in attribute_keys),
                ", ".join(sorted(tags.get(r.id, []))) or None,
                owner[0] if owner else None,
                owner[1] if owner else None,
                _time(r.created_at, tz, typed),
            ]


def _time(value: dt.datetime | None, tz: ZoneInfo, typed: bool) -> Any:
    if value is None:
        return None
    local = value.astimezone(tz)
    return local.replace(tzinfo=None) if typed else local.isoformat(" ", "seconds")


def _birthday(value: dt.date | None, mmdd: int | None, typed: bool) -> Any:
    if value is not None:
        return value if typed else value.isoformat()
    if mmdd:
        return f"--{mmdd // 100:02d}-{mmdd % 100:02d}"
    return None


def export(session: Session, principal: Principal, flt: ContactFilter, file_format: str, path: Path) -> None:
    """Writes the contacts the filter selects (a consultant's own only) to `path` as csv or xlsx."""
    if file_format == "xlsx":
        write_xlsx(path, rows(session, principal, flt, typed=True))
    else:
        write_csv(path, rows(session, principal, flt, typed=False))
