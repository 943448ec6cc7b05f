"""Script search, the record of uses, and usage and conversion figures.

The index of a workspace lives in this process's memory and is rebuilt when its scripts change: every
search first reads a fingerprint of the workspace's scripts (how many, how many published, the last
`updated_at`, the highest id) with one indexed query, and rebuilds when it differs. Any edit, publish,
archive, delete or new script changes the fingerprint, so a search never sees a stale library, also
with several processes.

Conversion of a script: of the contacts it was used with, those who paid an order (`order.paid`) within
7 days after a use of it. A contact merged into another counts as the survivor.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.auth.principal import Principal
from siyu.contacts.models import Contact
from siyu.contacts.service import get_contact
from siyu.content.models import ContentItem, ContentKind, ContentStatus
from siyu.errors import NotFound, validation_error
from siyu.events.models import Event
from siyu.kit.time import utcnow
from siyu.scripts.index import Analysed, Bm25Index, Hit, ScriptDoc
from siyu.scripts.models import ScriptUse
from siyu.staff.models import Staff

CONVERSION_WINDOW = dt.timedelta(days=7)
CONVERSION_EVENT = "order.paid"
CACHED_WORKSPACES = 64

Fingerprint = tuple[Any, ...]


@dataclass
class _Cached:
    fingerprint: Fingerprint
    index: Bm25Index
    docs: dict[int, ScriptDoc]
    analysed: dict[ScriptDoc, Analysed]


_cache: OrderedDict[int, _Cached] = OrderedDict()
_cache_lock = threading.Lock()


def _scripts(workspace_id: int) -> Any:
    return (ContentItem.workspace_id == workspace_id, ContentItem.kind == ContentKind.script)


def fingerprint(session: Session, workspace_id: int) -> Fingerprint:
    published = func.sum(func.cast(ContentItem.status == ContentStatus.published, ContentItem.version.type))
    row = session.execute(
        select(func.count(), published, func.max(ContentItem.updated_at), func.max(ContentItem.id)).where(
            *_scripts(workspace_id)
        )
    ).one()
    return tuple(row)


def script_doc(item_id: int, title: str, data: Any) -> ScriptDoc:
    """What the index reads of a script; a malformed `data` gives empty fields rather than an error."""
    data = data if isinstance(data, dict) else {}
    question = data.get("question")
    answers = data.get("answers")
    return ScriptDoc(
        id=item_id,
        title=title or "",
        question=question if isinstance(question, str) else "",
        answers=tuple(a for a in answers if isinstance(a, str)) if isinstance(answers, list) else (),
    )


def load_docs(session: Session, workspace_id: int) -> list[ScriptDoc]:
    rows = session.execute(
        select(ContentItem.id, ContentItem.title, ContentItem.data)
        .where(*_scripts(workspace_id), ContentItem.status == ContentStatus.published)
        .order_by(ContentItem.id)
    )
    return [script_doc(item_id, title, data) for item_id, title, data in rows]


def index_for(session: Session, workspace_id: int) -> _Cached:
    """The workspace's index, rebuilt if its scripts changed since it was built."""
    current = fingerprint(session, workspace_id)
    with _cache_lock:
        cached = _cache.get(workspace_id)
        if cached is not None and cached.fingerprint == current:
            _cache.move_to_end(workspace_id)
            return cached
    docs = load_docs(session, workspace_id)
    analysed = cached.analysed if cached is not None else {}
    keep = {doc: analysed[doc] for doc in docs if doc in analysed}  # scripts unchanged since the last build
    built = _Cached(current, Bm25Index.build(docs, keep), {doc.id: doc for doc in docs}, keep)
    with _cache_lock:
        _cache[workspace_id] = built
        _cache.move_to_end(workspace_id)
        while len(_cache) > CACHED_WORKSPACES:
            _cache.popitem(last=False)
    return built


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


# --- usage and conversion -----------------------------------------------------------------------------


@dataclass
class Usage:
    uses: int = 0
    contacts: int = 0
    converted: int = 0
    last_used_at: dt.datetime | None = None
    by_answer: dict[int, int] = field(default_factory=dict)

    @property
    def conversion_rate(self) -> float | None:
        return self.converted / self.contacts if self.contacts else None


CHUNK = 5000  # ids per IN (...): well under SQLite's bound-variable limit


def _chunks(ids: Sequence[int]) -> list[list[int]]:
    return [list(ids[start : start + CHUNK]) for start in range(0, len(ids), CHUNK)]


def _survivors(session: Session, contact_ids: set[int]) -> dict[int, int]:
    """contact id -> the live profile's id (a merged-away id resolves to its survivor)."""
    out = {}
    for chunk in _chunks(sorted(contact_ids)):
        for contact_id, merged_into in session.execute(
            select(Contact.id, Contact.merged_into_id).where(Contact.id.in_(chunk))
        ):
            out[contact_id] = merged_into or contact_id
    return out


def usage(session: Session, workspace_id: int, script_ids: Sequence[int]) -> dict[int, Usage]:
    """Uses, contacts, converted contacts (order.paid within 7 days after a use) per script."""
    out = {script_id: Usage() for script_id in script_ids}
    if not script_ids:
        return out
    uses = list(
        session.execute(
            select(ScriptUse.content_id, ScriptUse.contact_id, ScriptUse.used_at, ScriptUse.answer_index).where(
                ScriptUse.workspace_id == workspace_id, ScriptUse.content_id.in_(list(script_ids))
            )
        )
    )
    survivors = _survivors(session, {u.contact_id for u in uses if u.contact_id is not None})
    used_with: dict[int, dict[int, list[dt.datetime]]] = {}
    for script_id, contact_id, used_at, answer_index in uses:
        entry = out[script_id]
        entry.uses += 1
        entry.by_answer[answer_index] = entry.by_answer.get(answer_index, 0) + 1
        if entry.last_used_at is None or used_at > entry.last_used_at:
            entry.last_used_at = used_at
        if contact_id is not None:
            used_with.setdefault(script_id, {}).setdefault(survivors.get(contact_id, contact_id), []).append(used_at)
    contacts = {c for per_script in used_with.values() for c in per_script}
    paid: dict[int, list[dt.datetime]] = {}
    if contacts:
        earliest = min(t for per_script in used_with.values() for times in per_script.values() for t in times)
        statement = select(Event.contact_id, Event.occurred_at).where(
            Event.workspace_id == workspace_id, Event.type == CONVERSION_EVENT, Event.occurred_at >= earliest
        )
        for chunk in _chunks(sorted(contacts)):
            for contact_id, occurred_at in session.execute(statement.where(Event.contact_id.in_(chunk))):
                paid.setdefault(contact_id, []).append(occurred_at)
    for script_id, per_contact in used_with.items():
        entry = out[script_id]
        entry.contacts = len(per_contact)
        entry.converted = sum(
            1
            for contact_id, times in per_contact.items()
            if any(t <= p <= t + CONVERSION_WINDOW for t in times for p in paid.get(contact_id, ()))
        )
    return out


@dataclass(frozen=True)
class StaffUsage:
    staff_id: int | None
    name: str | None
    uses: int


def usage_by_staff(session: Session, workspace_id: int, script_id: int) -> list[StaffUsage]:
    """Uses per staff member, most first; uses through an API key have no staff (staff_id None)."""
    rows = session.execute(
        select(ScriptUse.staff_id, Staff.name, func.count())
        .outerjoin(Staff, Staff.id == ScriptUse.staff_id)
        .where(ScriptUse.workspace_id == workspace_id, ScriptUse.content_id == script_id)
        .group_by(ScriptUse.staff_id, Staff.name)
    )
    found = [StaffUsage(staff_id, name, int(count)) for staff_id, name, count in rows]
    return sorted(found, key=lambda s: (-s.uses, s.staff_id or 0))


def most_used(session: Session, workspace_id: int, limit: int) -> list[int]:
    """Published scripts of the workspace, most used first (then newest): what the console shows before
    anything is typed."""
    uses = (
        select(ScriptUse.content_id, func.count().label("n"))
        .where(ScriptUse.workspace_id == workspace_id)
        .group_by(ScriptUse.content_id)
        .subquery()
    )
    rows = session.scalars(
        select(ContentItem.id)
        .outerjoin(uses, uses.c.content_id == ContentItem.id)
        .where(*_scripts(workspace_id), ContentItem.status == ContentStatus.published)
        .order_by(func.coalesce(uses.c.n, 0).desc(), ContentItem.id.desc())
        .limit(limit)
    )
    return list(rows)


# --- search ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    doc: ScriptDoc
    score: float | None
    terms: tuple[str, ...]
    usage: Usage


def search(session: Session, workspace_id: int, query: str, limit: int = 5) -> list[Result]:
    """The best published scripts for a question, best first, each with why and its figures. An empty
    query gives the most used scripts (score None)."""
    cached = index_for(session, workspace_id)
    hits: list[Hit]
    if query.strip():
        hits = cached.index.search(query, limit)
    else:
        hits = [Hit(script_id, 0.0, ()) for script_id in most_used(session, workspace_id, limit)]
    figures = usage(session, workspace_id, [h.id for h in hits])
    return [
        Result(cached.docs[h.id], h.score if query.strip() else None, h.terms, figures[h.id])
        for h in hits
        if h.id in cached.docs
    ]


def get_script(session: Session, workspace_id: int, script_id: int) -> ContentItem:
    item = session.get(ContentItem, script_id)
    if item is None or item.workspace_id != workspace_id or item.kind != ContentKind.script:
        raise NotFound(f"script {script_id} not found in this workspace")
    return item


def record_use(
    session: Session, principal: Principal, script_id: int, *, answer_index: int, contact_id: int | None
) -> ScriptUse:
    """Records that the caller used (copied, sent) one answer of a published script, for a contact."""
    item = get_script(session, principal.workspace_id, script_id)
    if item.status != ContentStatus.published:
        raise validation_error("script", f"script {script_id} is {item.status.value}; only published scripts are used")
    answers = script_doc(item.id, item.title, item.data).answers
    if not 0 <= answer_index < max(len(answers), 1):
        raise validation_error("answer_index", f"must be between 0 and {max(len(answers) - 1, 0)} for this script")
    if contact_id is not None:
        contact_id = get_contact(session, principal, contact_id).id  # in the workspace, and owned by a consultant
    use = ScriptUse(
        workspace_id=principal.workspace_id,
        content_id=item.id,
        answer_index=answer_index,
        contact_id=contact_id,
        staff_id=principal.staff_id,
        api_key_id=principal.api_key_id,
        used_at=utcnow(),
    )
    session.add(use)
    session.flush()
    return use
