"""Event ingestion: validate the whole batch, resolve people, number the events, store them at once.

A batch is all-or-nothing: any bad event refuses the batch with every problem listed, and nothing is
written. Replaying a batch adds nothing (event ids are unique per workspace). The caller commits; a
2xx is sent only after that commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field, TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from siyu.contacts import repository as contacts_repo
from siyu.contacts.identities import IdentityError, normalize
from siyu.contacts.merge import merge_contacts
from siyu.contacts.models import Contact, Identity
from siyu.errors import NotFound, ValidationFailed
from siyu.events import repository
from siyu.events.catalog import EVENT_TYPE_PATTERN, STANDARD_EVENT_TYPES, SYSTEM_EVENT_TYPES, Properties
from siyu.events.models import Event
from siyu.events.schemas import EventBatch, EventIn, EventRead, IngestResult
from siyu.kit.time import utcnow
from siyu.workspaces.models import Workspace

MAX_FUTURE = dt.timedelta(days=1)
MAX_REPORTED_PROBLEMS = 1000


@dataclass(slots=True)
class _Prepared:
    event: EventIn
    occurred_at: dt.datetime
    properties: dict[str, Any]
    pairs: list[tuple[str, str]]
    contact_id: int | None


def _loc_to_field(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@lru_cache(maxsize=8)
def _batch_adapter(max_events: int) -> TypeAdapter[EventBatch]:
    class LimitedBatch(EventBatch):
        events: list[EventIn] = Field(min_length=1, max_length=max_events)

    return TypeAdapter(LimitedBatch)  # type: ignore[arg-type]


def parse_batch(body: bytes, *, max_events: int) -> EventBatch:
    """Decodes and shape-checks a request body; raises ValidationFailed naming each bad event.

    pydantic-core parses the JSON itself (no intermediate Python objects) and stops counting at the limit.
    """
    try:
        return _batch_adapter(max_events).validate_json(body)
    except PydanticValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        if first["type"] == "json_invalid":
            reason = first["ctx"].get("error", "invalid JSON") if first.get("ctx") else "invalid JSON"
            raise ValidationFailed(
                f"body is not valid JSON: {reason}", details=[{"field": "body", "reason": reason}]
            ) from None
        problems: list[dict[str, Any]] = []
        for error in errors[:MAX_REPORTED_PROBLEMS]:
            loc = list(error["loc"])
            if loc == ["events"]:
                if error["type"] == "too_long":
                    raise ValidationFailed(
                        f"batch has more than {max_events} events; the limit is {max_events} per request: split it",
                        details=[{"field": "events", "reason": f"over the limit of {max_events}", "limit": max_events}],
                    ) from None
                if error["type"] == "too_short":
                    raise ValidationFailed(
                        "batch has no events", details=[{"field": "events", "reason": "empty"}]
                    ) from None
            index = loc[1] if len(loc) > 1 and loc[0] == "events" and isinstance(loc[1], int) else None
            field = _loc_to_field(loc[2:]) if index is not None else _loc_to_field(loc)
            problems.append({"index": index, "field": field or "event", "reason": error["msg"]})
        if all(p["index"] is None for p in problems):
            message = "; ".join(f"{p['field']}: {p['reason']}" for p in problems)
            raise ValidationFailed(f'body must be an object {{"events": [...]}}: {message}', details=problems) from None
        raise _failed(problems, None) from None


def _failed(problems: list[dict[str, Any]], total: int | None) -> ValidationFailed:
    bad = len({p["index"] for p in problems})
    first = problems[0]
    of_total = f" of {total}" if total is not None else ""
    return ValidationFailed(
        f"{bad}{of_total} events are invalid, nothing was stored; first: "
        f"events[{first['index']}].{first['field']}: {first['reason']}",
        details=problems,
    )


def _prepare(batch: EventBatch, *, tz: ZoneInfo, region: str, now: dt.datetime) -> list[_Prepared]:
    prepared: list[_Prepared] = []
    problems: list[dict[str, Any]] = []
    seen_ids: dict[str, int] = {}
    by_type: dict[str, list[int]] = {}
    rejected: set[int] = set()

    def bad(index: int, field: str, reason: str) -> None:
        problems.append({"index": index, "field": field, "reason": reason})

    for index, event in enumerate(batch.events):
        before = len(problems)
        if event.id in seen_ids:
            bad(index, "id", f"repeats the id of events[{seen_ids[event.id]}] in this batch")
        seen_ids.setdefault(event.id, index)
        if not EVENT_TYPE_PATTERN.match(event.type):
            bad(index, "type", "must look like 'noun.verb' in lower case, e.g. order.paid")
        elif event.type in SYSTEM_EVENT_TYPES:
            bad(index, "type", f"{event.type!r} is recorded by siyu itself and cannot be sent")
        occurred = event.timestamp or now
        if occurred.tzinfo is None:
            occurred = occurred.replace(tzinfo=tz)
        occurred = occurred.astimezone(dt.UTC)
        if occurred > now + MAX_FUTURE:
            bad(index, "timestamp", "is more than a day in the future; check the clock or the time zone")
        spec = STANDARD_EVENT_TYPES.get(event.type)
        if spec is not None:
            by_type.setdefault(event.type, []).append(index)
        pairs: list[tuple[str, str]] = []
        contact_id: int | None = None
        if not event.contact:
            bad(index, "contact", 'names no identity; give at least one, e.g. {"phone": "138..."}')
        for key, value in event.contact.items():
            if key == "id":
                if isinstance(value, bool) or not isinstance(value, int):
                    bad(index, "contact.id", "must be a siyu contact id (an integer)")
                else:
                    contact_id = value
                continue
            try:
                pairs.append((key, normalize(key, value, region=region)))
            except IdentityError as exc:
                bad(index, f"contact.{key}", str(exc))
        if len(problems) == before:
            prepared.append(_Prepared(event, occurred, event.properties, pairs, contact_id))
        else:
            rejected.add(index)
    # Standard properties: one validation call per type rather than one per event.
    position = {id(p.event): n for n, p in enumerate(prepared)}
    for event_type, indexes in by_type.items():
        adapter = _properties_adapter(STANDARD_EVENT_TYPES[event_type][0])
        values = [batch.events[i].properties for i in indexes]
        try:
            cleaned = adapter.dump_python(adapter.validate_python(values), exclude_unset=True)
        except PydanticValidationError as exc:
            for error in exc.errors():
                index = indexes[int(error["loc"][0])]
                bad(index, _loc_to_field(["properties", *error["loc"][1:]]), error["msg"])
            continue
        for i, props in zip(indexes, cleaned, strict=True):
            if i not in rejected:
                prepared[position[id(batch.events[i])]].properties = props
    if problems:
        problems.sort(key=lambda p: p["index"])
        raise _failed(problems[:MAX_REPORTED_PROBLEMS], len(batch.events))
    return prepared


@lru_cache(maxsize=64)
def _properties_adapter(model: type[Properties]) -> TypeAdapter[list[Properties]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[object, object] = {}

    def find(self, x: object) -> object:
        parent = self.parent.setdefault(x, x)
        if parent != x:
            parent = self.parent[x] = self.find(parent)
        return parent

    def union(self, a: object, b: object) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[ra] = rb


def _resolve_contacts(session: Session, workspace_id: int, items: list[_Prepared]) -> tuple[list[int], int, int]:
    """Finds or creates the contact of each event; merges profiles the batch shows are one person.

    Returns (contact id per item, contacts created, contacts merged). The usual event names one known
    identity and is settled by a dictionary look-up; the rest (several identities, new people, ids)
    are grouped into people with a union-find over identities and existing contacts.
    """
    all_pairs = list(dict.fromkeys(p for item in items for p in item.pairs))
    known = contacts_repo.contacts_by_identities(session, workspace_id, all_pairs)
    contact_ids: list[int | None] = [None] * len(items)
    hard: list[int] = []
    for n, item in enumerate(items):
        if item.contact_id is None and len(item.pairs) == 1 and item.pairs[0] in known:
            contact_ids[n] = known[item.pairs[0]]
        else:
            hard.append(n)
    if not hard:
        return contact_ids, 0, 0  # type: ignore[return-value]

    hard_items = [items[n] for n in hard]
    explicit_ids = {item.contact_id for item in hard_items if item.contact_id is not None}
    live: dict[int, int] = {}
    if explicit_ids:
        rows = session.execute(
            select(Contact.id, Contact.merged_into_id).where(
                Contact.workspace_id == workspace_id, Contact.id.in_(explicit_ids)
            )
        )
        live = {cid: merged or cid for cid, merged in rows}
        missing = explicit_ids - live.keys()
        if missing:
            raise NotFound(f"contact ids not found in this workspace: {sorted(missing)}")

    def anchor(item: _Prepared) -> object:
        return item.pairs[0] if item.pairs else ("#contact", live[item.contact_id])  # type: ignore[index]

    uf = _UnionFind()
    for item in hard_items:
        nodes: list[object] = list(item.pairs)
        if item.contact_id is not None:
            nodes.append(("#contact", live[item.contact_id]))
        nodes += [("#contact", known[pair]) for pair in item.pairs if pair in known]
        first = nodes[0]
        uf.find(first)
        for node in nodes[1:]:
            uf.union(first, node)

    # Each component is one person: its existing contacts (none, one, or several to merge).
    component_contacts: dict[object, set[int]] = {}
    for node in list(uf.parent):
        root = uf.find(node)
        component_contacts.setdefault(root, set())
        if isinstance(node, tuple) and node[0] == "#contact":
            component_contacts[root].add(int(node[1]))

    resolved: dict[object, int] = {}
    merged_into: dict[int, int] = {}
    to_create: list[object] = []
    for root, ids in component_contacts.items():
        if not ids:
            to_create.append(root)
            continue
        survivor_id, *others = sorted(ids)
        resolved[root] = survivor_id
        if others:
            survivor = session.get(Contact, survivor_id)
            assert survivor is not None
            for other_id in others:
                other = session.get(Contact, other_id)
                assert other is not None
                merge_contacts(session, survivor=survivor, merged=other, reason="events linked their identities")
                merged_into[other_id] = survivor_id

    if to_create:
        first_item_of: dict[object, _Prepared] = {}
        for item in hard_items:
            first_item_of.setdefault(uf.find(anchor(item)), item)
        now = utcnow()
        new_rows: list[dict[str, Any]] = []
        for root in to_create:
            item = first_item_of[root]
            source = item.properties.get("channel") if item.event.type == "contact.added" else None
            new_rows.append(
                {
                    "workspace_id": workspace_id,
                    "attributes": {},
                    "source_channel": source if isinstance(source, str) else None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        returning = insert(Contact).returning(Contact.id, sort_by_parameter_order=True)
        new_ids: list[int] = list(session.execute(returning, new_rows).scalars())
        resolved.update(zip(to_create, new_ids, strict=True))

    now = utcnow()
    new_identities = [
        {
            "workspace_id": workspace_id,
            "contact_id": resolved[uf.find(pair)],
            "type": pair[0],
            "value": pair[1],
            "created_at": now,
        }
        for pair in dict.fromkeys(p for item in hard_items for p in item.pairs)
        if pair not in known
    ]
    if new_identities:
        session.connection().execute(insert(Identity), new_identities)
    for n, item in zip(hard, hard_items, strict=True):
        contact_ids[n] = resolved[uf.find(anchor(item))]
    if merged_into:
        # An easy event may name a profile that a later event of this batch merged away.
        contact_ids = [merged_into.get(cid, cid) for cid in contact_ids]  # type: ignore[arg-type]
    return contact_ids, len(to_create), len(merged_into)  # type: ignore[return-value]


def ingest(session: Session, workspace_id: int, batch: EventBatch, *, region: str) -> IngestResult:
    # Lock the workspace row first (PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the write lock):
    # concurrent batches of one workspace then resolve people and number events one after the other,
    # so the same new phone cannot create two contacts and sequence order is commit order.
    workspace = session.scalar(select(Workspace).where(Workspace.id == workspace_id).with_for_update())
    if workspace is None:
        raise NotFound(f"workspace {workspace_id} not found")
    now = utcnow()
    items = _prepare(batch, tz=ZoneInfo(workspace.timezone), region=region, now=now)
    stored = repository.existing_event_ids(session, workspace_id, [i.event.id for i in items])
    fresh = [i for i in items if i.event.id not in stored]
    if not fresh:
        return IngestResult(
            accepted=0, duplicates=len(items), contacts_created=0, contacts_merged=0, first_seq=None, last_seq=None
        )
    contact_ids, created, merged = _resolve_contacts(session, workspace_id, fresh)
    first_seq = repository.allocate_seq(session, workspace_id, len(fresh))
    rows = [
        {
            "workspace_id": workspace_id,
            "seq": first_seq + offset,
            "event_id": item.event.id,
            "type": item.event.type,
            "contact_id": contact_id,
            "occurred_at": item.occurred_at,
            "received_at": now,
            "properties": item.properties,
        }
        for offset, (item, contact_id) in enumerate(zip(fresh, contact_ids, strict=True))
    ]
    repository.insert_events(session, rows)
    _note_first_consult(session, fresh, contact_ids)
    return IngestResult(
        accepted=len(fresh),
        duplicates=len(items) - len(fresh),
        contacts_created=created,
        contacts_merged=merged,
        first_seq=first_seq,
        last_seq=first_seq + len(fresh) - 1,
    )


def _note_first_consult(session: Session, items: list[_Prepared], contact_ids: list[int]) -> None:
    """A contact's first received message is their first consult (seed 002): time and question."""
    earliest: dict[int, _Prepared] = {}
    for item, contact_id in zip(items, contact_ids, strict=True):
        if item.event.type == "message.received":
            current = earliest.get(contact_id)
            if current is None or item.occurred_at < current.occurred_at:
                earliest[contact_id] = item
    if not earliest:
        return
    table = Contact.__table__
    assert isinstance(table, Table)
    session.connection().execute(
        update(table)
        .where(
            table.c.id == bindparam("cid"),
            (table.c.first_consult_at.is_(None)) | (table.c.first_consult_at > bindparam("at")),
        )
        .values(first_consult_at=bindparam("at"), consult_question=bindparam("question")),
        [
            {"cid": cid, "at": item.occurred_at, "question": item.properties.get("text")}
            for cid, item in earliest.items()
        ],
    )


def list_events(
    session: Session,
    workspace_id: int,
    *,
    after_seq: int | None,
    contact_id: int | None,
    type: str | None,
    limit: int,
) -> list[EventRead]:
    """Events in sequence order; `after_seq` lets a consumer read on from where it stopped."""
    q = select(Event).where(Event.workspace_id == workspace_id)
    if after_seq is not None:
        q = q.where(Event.seq > after_seq)
    if contact_id is not None:
        q = q.where(Event.contact_id == contact_id)
    if type is not None:
        q = q.where(Event.type == type)
    rows = session.scalars(q.order_by(Event.seq).limit(limit))
    return [EventRead.model_validate(row) for row in rows]
