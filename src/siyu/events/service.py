"""Event ingestion: validate the whole batch, resolve people, number the events, store them at once.

A batch is all-or-nothing: any bad event refuses the batch with every problem listed, and nothing is
written. Replaying a batch adds nothing (event ids are unique per workspace). The caller commits; a
2xx is sent only after that commit.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from siyu.contacts import repository as contacts_repo
from siyu.contacts.merge import merge_contacts
from siyu.contacts.models import Contact
from siyu.errors import NotFound
from siyu.events import repository
from siyu.events.models import Event
from siyu.events.schemas import EventRead, IngestResult
from siyu.events.validation import PreparedEvent, parse_batch, prepare
from siyu.kit.time import utcnow
from siyu.kit.unionfind import UnionFind
from siyu.workspaces.models import Workspace

__all__ = ["ingest", "list_events", "live_contact_ids", "parse_batch", "prepare", "store", "workspace_timezone"]


def live_contact_ids(session: Session | Connection, workspace_id: int, contact_ids: set[int]) -> dict[int, int]:
    """Each named contact id -> the profile that holds it now (itself, or the one it was merged into)."""
    if not contact_ids:
        return {}
    rows = session.execute(
        select(Contact.id, Contact.merged_into_id).where(
            Contact.workspace_id == workspace_id, Contact.id.in_(contact_ids)
        )
    )
    live = {cid: merged or cid for cid, merged in rows}
    missing = contact_ids - live.keys()
    if missing:
        raise NotFound(f"contact ids not found in this workspace: {sorted(missing)}")
    return live


def _resolve_contacts(session: Session, workspace_id: int, items: list[PreparedEvent]) -> tuple[list[int], int, int]:
    """Finds or creates the contact of each event; merges profiles the batch shows are one person.

    Returns (contact id per item, contacts created, contacts merged). The usual event names known
    identities of one contact and is settled by dictionary look-ups; the rest (new people or
    identities, identities of several contacts, contact ids) are grouped into people with a
    union-find over identities and existing contacts.
    """
    all_pairs = list(dict.fromkeys(p for item in items for p in item.pairs))
    known = contacts_repo.contacts_by_identities(session, workspace_id, all_pairs)
    contact_ids: list[int | None] = [None] * len(items)
    hard: list[int] = []
    for n, item in enumerate(items):
        if item.contact_id is None and item.pairs:
            # Every identity known and all of one contact: nothing to link, add or merge.
            found = {known.get(pair) for pair in item.pairs}
            if len(found) == 1 and None not in found:
                contact_ids[n] = found.pop()
                continue
        hard.append(n)
    if not hard:
        return contact_ids, 0, 0  # type: ignore[return-value]

    hard_items = [items[n] for n in hard]
    explicit_ids = {item.contact_id for item in hard_items if item.contact_id is not None}
    live = live_contact_ids(session, workspace_id, explicit_ids)

    def anchor(item: PreparedEvent) -> object:
        return item.pairs[0] if item.pairs else ("#contact", live[item.contact_id])  # type: ignore[index]

    uf = UnionFind()
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
        first_item_of: dict[object, PreparedEvent] = {}
        for item in hard_items:
            first_item_of.setdefault(uf.find(anchor(item)), item)
        now = utcnow()
        new_rows: list[dict[str, Any]] = []
        for root in to_create:
            item = first_item_of[root]
            source = item.properties.get("channel") if item.type == "contact.added" else None
            new_rows.append(
                {
                    "workspace_id": workspace_id,
                    "source_channel": source if isinstance(source, str) else None,
                    "created_at": now,
                }
            )
        new_ids = contacts_repo.insert_contacts(session, new_rows)
        resolved.update(zip(to_create, new_ids, strict=True))

    fresh_pairs = dict.fromkeys(p for item in hard_items for p in item.pairs if p not in known)
    contacts_repo.insert_identities(
        session, workspace_id, [(resolved[uf.find(pair)], pair[0], pair[1]) for pair in fresh_pairs], utcnow()
    )
    for n, item in zip(hard, hard_items, strict=True):
        contact_ids[n] = resolved[uf.find(anchor(item))]
    if merged_into:
        # An easy event may name a profile that a later event of this batch merged away.
        contact_ids = [merged_into.get(cid, cid) for cid in contact_ids]  # type: ignore[arg-type]
    return contact_ids, len(to_create), len(merged_into)  # type: ignore[return-value]


def ingest(session: Session, workspace_id: int, events: list[Any], *, region: str) -> IngestResult:
    """Checks and stores a batch from parse_batch() in the caller's transaction."""
    workspace = session.get(Workspace, workspace_id)
    if workspace is None:
        raise NotFound(f"workspace {workspace_id} not found")
    now = utcnow()
    items = prepare(events, tz=ZoneInfo(workspace.timezone), region=region, now=now)
    return store(session, workspace_id, items, now=now)


def workspace_timezone(session: Session | Connection, workspace_id: int) -> ZoneInfo:
    timezone = session.scalar(select(Workspace.timezone).where(Workspace.id == workspace_id))
    if timezone is None:
        raise NotFound(f"workspace {workspace_id} not found")
    return ZoneInfo(timezone)


def store(session: Session, workspace_id: int, items: list[PreparedEvent], *, now: dt.datetime) -> IngestResult:
    """Stores checked events: skips ids already stored, resolves people, numbers and inserts the rest.

    The endpoint checks a batch (prepare) before opening the write transaction, so the write lock is
    held only for this part.
    """
    # Lock the workspace row first (PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the write lock):
    # concurrent batches of one workspace then resolve people and number events one after the other,
    # so the same new phone cannot create two contacts and sequence order is commit order. NO KEY
    # (key_share): foreign-key checks of other writers of this workspace's rows need not wait for it.
    locked = session.scalar(select(Workspace.id).where(Workspace.id == workspace_id).with_for_update(key_share=True))
    if locked is None:
        raise NotFound(f"workspace {workspace_id} not found")
    stored = repository.existing_event_ids(session, workspace_id, [i.event_id for i in items])
    fresh = [i for i in items if i.event_id not in stored]
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
            "event_id": item.event_id,
            "type": item.type,
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


def _note_first_consult(session: Session, items: list[PreparedEvent], contact_ids: list[int]) -> None:
    """A contact's first received message is their first consult (seed 002): time and question."""
    earliest: dict[int, PreparedEvent] = {}
    for item, contact_id in zip(items, contact_ids, strict=True):
        if item.type == "message.received":
            current = earliest.get(contact_id)
            if current is None or item.occurred_at < current.occurred_at:
                earliest[contact_id] = item
    contacts_repo.note_first_consults(
        session, [(cid, item.occurred_at, item.properties.get("text")) for cid, item in earliest.items()]
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
