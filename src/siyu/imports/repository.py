"""Set-based writes for imports: many contacts inserted or filled in a few statements."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import BigInteger, Column, MetaData, PrimaryKeyConstraint, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from siyu.contacts.models import Contact, Note
from siyu.kit.sql import select_where_in, sqlite_datetime

# The fields an import may set on a contact (besides attributes).
PROFILE_COLUMNS = (
    "name",
    "owner_id",
    "source_channel",
    "first_consult_at",
    "consult_question",
    "region",
    "occupation",
    "gender",
    "birthday",
    "birthday_mmdd",
)

# (contact, tag) pairs of one import, so each tag is applied with one set-based change_tags() call.
_temp = MetaData()
import_tags = Table(
    "siyu_import_tags",
    _temp,
    Column("tag_id", BigInteger, nullable=False),
    Column("contact_id", BigInteger, nullable=False),
    PrimaryKeyConstraint("tag_id", "contact_id"),
    prefixes=["TEMPORARY"],
)


def insert_contacts(session: Session, workspace_id: int, rows: list[dict[str, Any]], now: dt.datetime) -> list[int]:
    """Inserts contacts with their profile and attributes; returns their ids in the order of `rows`.

    As contacts.repository.insert_contacts: on SQLite the transaction holds the only write lock (BEGIN
    IMMEDIATE), so the ids are max(id)+1 onwards; PostgreSQL numbers them with RETURNING, in order.
    """
    if not rows:
        return []
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        start = int(connection.exec_driver_sql("SELECT COALESCE(MAX(id), 0) FROM contact").scalar_one()) + 1
        ids = list(range(start, start + len(rows)))
        stamp = sqlite_datetime(now)
        columns = ", ".join(PROFILE_COLUMNS)
        marks = ", ".join("?" * (len(PROFILE_COLUMNS) + 5))
        connection.exec_driver_sql(
            f"INSERT INTO contact (id, workspace_id, {columns}, attributes, created_at, updated_at) VALUES ({marks})",
            [
                (cid, workspace_id, *_sqlite_profile(r), _json(r), stamp, stamp)
                for cid, r in zip(ids, rows, strict=True)
            ],
        )
        return ids
    values = [
        {
            **{c: r.get(c) for c in PROFILE_COLUMNS},
            "workspace_id": workspace_id,
            "attributes": r.get("attributes") or {},
            "created_at": now,
            "updated_at": now,
        }
        for r in rows
    ]
    returning = insert(Contact).returning(Contact.id, sort_by_parameter_order=True)
    return [int(cid) for cid in connection.execute(returning, values).scalars()]


def _json(row: dict[str, Any]) -> str:
    return orjson.dumps(row.get("attributes") or {}).decode()


def _sqlite_profile(row: dict[str, Any]) -> tuple[Any, ...]:
    out: list[Any] = []
    for column in PROFILE_COLUMNS:
        value = row.get(column)
        if value is not None:
            if column == "first_consult_at":
                value = sqlite_datetime(value)
            elif column == "birthday":
                value = value.isoformat()
            elif column == "gender":
                value = value.value
        out.append(value)
    return tuple(out)


def load_profiles(session: Session, contact_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The import-relevant columns of these contacts, by id."""
    table = Contact.__table__
    columns = [table.c.id, *(table.c[c] for c in PROFILE_COLUMNS), table.c.attributes]
    result: dict[int, dict[str, Any]] = {}
    ids = list(contact_ids)
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        for row in session.execute(select(*columns).where(table.c.id.in_(chunk))):
            data = dict(row._mapping)
            result[data["id"]] = data
    return result


def update_profiles(session: Session, rows: list[dict[str, Any]], now: dt.datetime) -> None:
    """Writes the profile columns and attributes of existing contacts: one executemany."""
    if not rows:
        return
    table = Contact.__table__
    assert isinstance(table, Table)
    statement = (
        update(table)
        .where(table.c.id == bindparam("_id"))
        .values({c: bindparam(c) for c in (*PROFILE_COLUMNS, "attributes", "updated_at")})
    )
    session.connection().execute(
        statement,
        [
            {**{c: r.get(c) for c in PROFILE_COLUMNS}, "attributes": r["attributes"], "updated_at": now, "_id": r["id"]}
            for r in rows
        ],
    )


def existing_notes(session: Session, contact_ids: Sequence[int]) -> set[tuple[int, str]]:
    sql = "SELECT contact_id, body FROM note WHERE contact_id {in}"
    return {(int(c), str(b)) for c, b in select_where_in(session, sql, [], list(contact_ids))}


def insert_notes(
    session: Session,
    workspace_id: int,
    notes: list[tuple[int, str]],
    *,
    staff_id: int | None,
    api_key_id: int | None,
    now: dt.datetime,
) -> None:
    if not notes:
        return
    session.connection().execute(
        insert(Note),
        [
            {
                "workspace_id": workspace_id,
                "contact_id": cid,
                "body": body,
                "author_staff_id": staff_id,
                "author_api_key_id": api_key_id,
                "created_at": now,
            }
            for cid, body in notes
        ],
    )


def fill_tag_table(session: Session, pairs: list[tuple[int, int]]) -> None:
    """Creates the import's temporary (tag, contact) table and fills it."""
    connection = session.connection()
    import_tags.create(connection)
    if pairs:
        connection.execute(insert(import_tags), [{"tag_id": t, "contact_id": c} for t, c in pairs])


def drop_tag_table(session: Session) -> None:
    import_tags.drop(session.connection())
