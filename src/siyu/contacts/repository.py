"""Contact queries. Every query is scoped by workspace; consultants additionally by owner."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    union,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from siyu.contacts.identities import STANDARD_IDENTITY_TYPES, IdentityError, normalize
from siyu.contacts.models import AttributeDefinition, AttributeType, Contact, Identity, Note
from siyu.errors import validation_error
from siyu.kit.sql import select_where_in, sqlite_datetime, starts_with
from siyu.tags.models import ContactTag, Tag

# Standard profile columns that `attr.<name>=value` filters may name.
STANDARD_FILTER_COLUMNS = {
    "name": Contact.name,
    "source_channel": Contact.source_channel,
    "region": Contact.region,
    "occupation": Contact.occupation,
    "gender": Contact.gender,
    "consult_question": Contact.consult_question,
}


@dataclass
class ContactFilter:
    tag_ids: list[int] = field(default_factory=list)  # all of these
    owner_id: int | None = None
    unowned: bool = False
    source_channel: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)  # equality, standard or custom
    identity_type: str | None = None
    identity_value: str | None = None
    created_after: dt.datetime | None = None
    created_before: dt.datetime | None = None
    ids: list[int] | None = None
    # Free-text search: exact (normalised) identity of any type, name prefix, note substring.
    q: str | None = None
    search_values: list[str] = field(default_factory=list)  # identity values `q` may be stored as
    # Identity types the workspace uses, so the identity search is index look-ups (prepare_search).
    search_identity_types: list[str] | None = None
    search_dialect: str = "sqlite"  # the database's, set by prepare_search: prefix search differs
    # Many matches: test each row in id order rather than collect every match first (list_page).
    search_broad: bool = False


MAX_SEARCH_LENGTH = 100


def identity_candidates(text: str, region: str) -> list[str]:
    """The values an identity typed as `text` may be stored as: as typed, lower-cased (emails), E.164."""
    values = {text, text.lower()}
    with contextlib.suppress(IdentityError):
        values.add(normalize("phone", text, region=region))
    return sorted(values)


def identity_types_in_use(session: Session, workspace_id: int) -> list[str]:
    """Distinct identity types of a workspace by a loose index scan: one index seek per type, however
    many identities there are (a recursive CTE; SQLite and PostgreSQL both lack a skip scan)."""
    sql = (
        "WITH RECURSIVE t(type) AS ("
        " SELECT MIN(type) FROM identity WHERE workspace_id = :ws"
        " UNION ALL"
        " SELECT (SELECT MIN(i.type) FROM identity i WHERE i.workspace_id = :ws AND i.type > t.type)"
        " FROM t WHERE t.type IS NOT NULL"
        ") SELECT type FROM t WHERE type IS NOT NULL"
    )
    return [row[0] for row in session.execute(text(sql), {"ws": workspace_id})]


def prepare_search(session: Session, workspace_id: int, flt: ContactFilter) -> None:
    """Looks up what the search needs before the query runs (the identity types in use)."""
    if flt.q and flt.search_identity_types is None:
        flt.search_identity_types = identity_types_in_use(session, workspace_id)
        flt.search_dialect = session.get_bind().dialect.name


def search_ids(workspace_id: int, flt: ContactFilter, *, distinct: bool = True) -> Select[Any]:
    """Contact ids matching `flt.q`: each branch is an index look-up except the note substring."""
    assert flt.q
    term = flt.q
    types = flt.search_identity_types if flt.search_identity_types is not None else list(STANDARD_IDENTITY_TYPES)
    by_identity = select(Identity.contact_id).where(
        Identity.workspace_id == workspace_id,
        Identity.type.in_(types or ["-"]),
        Identity.value.in_(flt.search_values or [term]),
    )
    named = aliased(Contact)
    by_name = select(named.id).where(
        named.workspace_id == workspace_id, starts_with(named.name, term, flt.search_dialect)
    )
    by_note = select(Note.contact_id).where(
        Note.workspace_id == workspace_id, Note.body.contains(term, autoescape=True)
    )
    return select(literal_column("contact_id")).select_from(
        (union if distinct else union_all)(
            by_identity, by_name.with_only_columns(named.id.label("contact_id")), by_note
        ).subquery()
    )


def filtered(
    select_from: Select[Any],
    workspace_id: int,
    flt: ContactFilter,
    owner_only: int | None,
    defs: dict[str, AttributeDefinition],
) -> Select[Any]:
    """Adds the WHERE clauses of a filter to a query over contact (live profiles only)."""
    q = select_from.where(Contact.workspace_id == workspace_id, Contact.merged_into_id.is_(None))
    if owner_only is not None:
        q = q.where(Contact.owner_id == owner_only)
    if flt.tag_ids:
        # The first tag drives the query through ix_contact_tag_tag_id_contact_id in id order, so
        # order_tags_rarest_first() puts the rarest first; the others are checked per row by primary key.
        first, *rest = flt.tag_ids
        q = q.join(ContactTag, and_(ContactTag.contact_id == Contact.id, ContactTag.tag_id == first))
        for tag_id in rest:
            also = aliased(ContactTag)
            q = q.where(exists().where(also.contact_id == Contact.id, also.tag_id == tag_id).correlate(Contact))
    if flt.owner_id is not None:
        q = q.where(Contact.owner_id == flt.owner_id)
    if flt.unowned:
        q = q.where(Contact.owner_id.is_(None))
    if flt.source_channel is not None:
        q = q.where(Contact.source_channel == flt.source_channel)
    for key, value in flt.attributes.items():
        column = STANDARD_FILTER_COLUMNS.get(key)
        if column is not None:
            q = q.where(column == value)
            continue
        definition = defs.get(key)
        if definition is None:
            known = ", ".join([*STANDARD_FILTER_COLUMNS, *defs])
            raise validation_error(f"attr.{key}", f"unknown attribute; filterable: {known}")
        if definition.type is AttributeType.number:
            try:
                number = float(value)
            except ValueError:
                raise validation_error(f"attr.{key}", f"{value!r} is not a number") from None
            q = q.where(Contact.attributes[key].as_float() == number)
        else:
            q = q.where(Contact.attributes[key].as_string() == value)
    if flt.identity_type is not None:
        condition = [Identity.contact_id == Contact.id, Identity.type == flt.identity_type]
        if flt.identity_value is not None:
            condition.append(Identity.value == flt.identity_value)
        q = q.where(exists().where(*condition))
    if flt.created_after is not None:
        q = q.where(Contact.created_at >= flt.created_after)
    if flt.created_before is not None:
        q = q.where(Contact.created_at < flt.created_before)
    if flt.ids is not None:
        q = q.where(Contact.id.in_(flt.ids))
    if flt.q:
        q = q.where(
            search_per_row(workspace_id, flt) if flt.search_broad else Contact.id.in_(search_ids(workspace_id, flt))
        )
    return q


def search_per_row(workspace_id: int, flt: ContactFilter) -> ColumnElement[bool]:
    """The search as a test of one contact row: cheap per row (its name, then index look-ups by
    contact id), for scans in id order that meet a match every few rows."""
    assert flt.q
    types = flt.search_identity_types if flt.search_identity_types is not None else list(STANDARD_IDENTITY_TYPES)
    return or_(
        starts_with(Contact.name, flt.q, flt.search_dialect),
        exists().where(
            Identity.contact_id == Contact.id,
            Identity.type.in_(types or ["-"]),
            Identity.value.in_(flt.search_values or [flt.q]),
        ),
        exists().where(Note.contact_id == Contact.id, Note.body.contains(flt.q, autoescape=True)),
    )


def order_tags_rarest_first(session: Session, tag_ids: list[int], cap: int = 5000) -> list[int]:
    """The rarest tag walks the fewest index entries to fill a page (0.25 ms instead of 6 ms at 1M
    contacts). Counting stops at `cap`, so sizing a popular tag costs no more than a rare one."""
    unique = list(dict.fromkeys(tag_ids))
    if len(unique) < 2:
        return unique
    sizes = {}
    for tag_id in unique:
        capped = select(ContactTag.contact_id).where(ContactTag.tag_id == tag_id).limit(cap).subquery()
        sizes[tag_id] = session.scalar(select(func.count()).select_from(capped)) or 0
    return sorted(unique, key=lambda t: sizes[t])


NARROW_SEARCH = 2000


def _narrow_search(session: Session, workspace_id: int, flt: ContactFilter) -> bool:
    """Whether the search matches fewer than NARROW_SEARCH contacts (counting stops there)."""
    # UNION ALL: a contact found twice may count twice; the threshold does not need exactness.
    capped = search_ids(workspace_id, flt, distinct=False).limit(NARROW_SEARCH).subquery()
    return int(session.scalar(select(func.count()).select_from(capped)) or 0) < NARROW_SEARCH


def list_page(
    session: Session,
    workspace_id: int,
    flt: ContactFilter,
    owner_only: int | None,
    defs: dict[str, AttributeDefinition],
    *,
    before_id: int | None,
    limit: int,
    oldest_first: bool = False,
) -> list[Contact]:
    """Newest first (or oldest first). `before_id` is the keyset cursor, the last id of the previous
    page (read as "after" when oldest first): no OFFSET, so page 10,000 costs what page 1 does."""
    if len(flt.tag_ids) > 1:
        flt.tag_ids = order_tags_rarest_first(session, flt.tag_ids)
    prepare_search(session, workspace_id, flt)
    if flt.q:
        # Few matches (a phone): collect them and sort. Many ("王", 50,000 of 1M): scan in id order and
        # test each row, which meets a page of matches within a few thousand rows.
        flt.search_broad = not _narrow_search(session, workspace_id, flt)
    order_column: Any = ContactTag.contact_id if flt.tag_ids else Contact.id
    if flt.q and not flt.search_broad and not flt.tag_ids:
        order_column = Contact.id + 0  # keeps SQLite from scanning all contacts in id order for a few matches
    q = filtered(select(Contact), workspace_id, flt, owner_only, defs)
    if before_id is not None:
        q = q.where(order_column > before_id if oldest_first else order_column < before_id)
    q = q.order_by(order_column.asc() if oldest_first else order_column.desc()).limit(limit)
    return list(session.scalars(q))


def identities_by_contact(session: Session, contact_ids: Sequence[int]) -> dict[int, list[Identity]]:
    result: dict[int, list[Identity]] = defaultdict(list)
    if contact_ids:
        rows = session.scalars(select(Identity).where(Identity.contact_id.in_(contact_ids)).order_by(Identity.id))
        for row in rows:
            result[row.contact_id].append(row)
    return result


def tags_by_contact(session: Session, contact_ids: Sequence[int]) -> dict[int, list[Tag]]:
    result: dict[int, list[Tag]] = defaultdict(list)
    if contact_ids:
        rows = session.execute(
            select(ContactTag.contact_id, Tag)
            .join(Tag, Tag.id == ContactTag.tag_id)
            .where(ContactTag.contact_id.in_(contact_ids))
            .order_by(Tag.id)
        )
        for contact_id, tag in rows:
            result[contact_id].append(tag)
    return result


def contacts_by_identities(
    session: Session, workspace_id: int, pairs: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """Maps (type, value) to contact id for the pairs that exist. One query per identity type."""
    by_type: dict[str, list[str]] = defaultdict(list)
    for identity_type, value in pairs:
        by_type[identity_type].append(value)
    found: dict[tuple[str, str], int] = {}
    sql = "SELECT value, contact_id FROM identity WHERE workspace_id = {p} AND type = {p} AND value {in}"
    for identity_type, values in by_type.items():
        for value, contact_id in select_where_in(session, sql, [workspace_id, identity_type], values):
            found[(identity_type, value)] = contact_id
    return found


def insert_contacts(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Inserts new contacts in bulk and returns their ids, in the order of `rows`.

    Each row has workspace_id, source_channel, created_at (other fields start empty). SQLite cannot
    promise the order of RETURNING for a multi-row insert, so SQLAlchemy would fall back to one
    statement per row; but the transaction holds SQLite's only write lock (BEGIN IMMEDIATE), so the
    next ids are known: max(id)+1 onwards. PostgreSQL numbers them with RETURNING, in order.
    """
    if not rows:
        return []
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        start = int(connection.exec_driver_sql("SELECT COALESCE(MAX(id), 0) FROM contact").scalar_one()) + 1
        ids = list(range(start, start + len(rows)))
        connection.exec_driver_sql(
            "INSERT INTO contact (id, workspace_id, source_channel, attributes, created_at, updated_at) "
            "VALUES (?, ?, ?, '{}', ?, ?)",
            [
                (
                    cid,
                    r["workspace_id"],
                    r["source_channel"],
                    sqlite_datetime(r["created_at"]),
                    sqlite_datetime(r["created_at"]),
                )
                for cid, r in zip(ids, rows, strict=True)
            ],
        )
        return ids
    values = [{**r, "attributes": {}, "updated_at": r["created_at"]} for r in rows]
    returning = insert(Contact).returning(Contact.id, sort_by_parameter_order=True)
    return [int(cid) for cid in connection.execute(returning, values).scalars()]


def insert_identities(session: Session, workspace_id: int, pairs: list[tuple[int, str, str]], now: dt.datetime) -> None:
    """Adds (contact_id, type, value) identities in one statement."""
    if not pairs:
        return
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        at = sqlite_datetime(now)
        connection.exec_driver_sql(
            "INSERT INTO identity (workspace_id, contact_id, type, value, created_at) VALUES (?, ?, ?, ?, ?)",
            [(workspace_id, cid, t, v, at) for cid, t, v in pairs],
        )
        return
    connection.execute(
        insert(Identity),
        [
            {"workspace_id": workspace_id, "contact_id": c, "type": t, "value": v, "created_at": now}
            for c, t, v in pairs
        ],
    )


def note_first_consults(session: Session, candidates: list[tuple[int, dt.datetime, str | None]]) -> None:
    """Sets (first_consult_at, consult_question) from (contact id, time, question) where the contact
    has none yet or a later one: one statement, whatever the number of contacts."""
    if not candidates:
        return
    connection = session.connection()
    sqlite = connection.dialect.name == "sqlite"
    marker = "?" if sqlite else "%s"
    rows = ", ".join(f"({marker}, {marker}, {marker})" for _ in candidates)
    if not sqlite:
        rows = ", ".join(f"({marker}::bigint, {marker}::timestamp, {marker}::text)" for _ in candidates)
    params: list[Any] = []
    for contact_id, at, question in candidates:
        stamp = sqlite_datetime(at) if sqlite else at.astimezone(dt.UTC).replace(tzinfo=None)
        params += [contact_id, stamp, question]
    connection.exec_driver_sql(
        f"WITH v(id, at, question) AS (VALUES {rows}) "
        "UPDATE contact SET first_consult_at = v.at, consult_question = v.question FROM v "
        "WHERE contact.id = v.id AND (contact.first_consult_at IS NULL OR contact.first_consult_at > v.at)",
        tuple(params),
    )
