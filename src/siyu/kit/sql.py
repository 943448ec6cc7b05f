"""Raw SQL for the few hot paths where SQLAlchemy's per-statement work costs more than the query."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any

import orjson
from sqlalchemy import BigInteger, CursorResult, Executable, Select, and_, any_, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

CHUNK = 5000  # well under SQLite's 32,766 bound variables


def dialect_insert(session: Session) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT DO NOTHING / DO UPDATE (both dialects spell it the same)."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def select_where_in(session: Session, sql: str, params: Sequence[Any], values: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The rows of `sql`, whose last condition is written `{in}`, for `values`, queried in chunks; as the
    driver returns them (tuples, values not converted), which saves building a SQLAlchemy Row for each of
    the thousands of rows an event batch looks up.

    `sql` uses `{p}` for each fixed parameter, e.g.
    "SELECT event_id FROM event WHERE workspace_id = {p} AND event_id {in}".
    SQLite gets `IN (?, ?, ...)`; PostgreSQL one array parameter, `= ANY(%s)`, so the statement text
    is the same whatever the number of values.
    """
    connection = session.connection()
    sqlite = connection.dialect.name == "sqlite"
    marker = "?" if sqlite else "%s"
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(values), CHUNK):
        chunk = list(values[start : start + CHUNK])
        if sqlite:
            statement = sql.format(p=marker, **{"in": f"IN ({', '.join('?' * len(chunk))})"})
            arguments: tuple[Any, ...] = (*params, *chunk)
        else:
            statement = sql.format(p=marker, **{"in": "= ANY(%s)"})
            arguments = (*params, chunk)
        rows.extend(_as_driver_returns(connection.exec_driver_sql(statement, arguments)))
    return rows


def driver_rows(session: Session, statement: Executable) -> list[Any]:
    """The rows of a Core statement as the DB-API driver returns them, without building SQLAlchemy Rows
    or converting values (about 2 µs a row saved): for hot reads of many narrow rows whose columns need
    no conversion (integers, text, and dates coerced to text, which PostgreSQL's driver returns as dates).
    Pending ORM changes are flushed first, as session.execute would (nothing to do costs nothing)."""
    session.flush()
    return _as_driver_returns(session.connection().execute(statement))


def _as_driver_returns(result: CursorResult[Any]) -> list[Any]:
    """A result's rows straight from the DB-API cursor (no Row objects, no conversions), then closed."""
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def sqlite_datetime(value: dt.datetime) -> str:
    """An aware datetime as SQLAlchemy stores a UTC DATETIME on SQLite: 'YYYY-MM-DD HH:MM:SS.ffffff'
    (tests/test_events_storage.py holds the two together)."""
    if value.tzinfo is not dt.UTC:
        value = value.astimezone(dt.UTC)
    return value.isoformat(" ", "microseconds")[:26]  # without the "+00:00"


def from_sqlite_datetime(text: str) -> dt.datetime:
    """What SQLAlchemy reads back from a UTC DATETIME on SQLite, an aware datetime, without its regular
    expression and type chain (hot reads of many rows; tests/test_events_storage.py holds the two together)."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def starts_with(column: Any, prefix: str, dialect: str) -> ColumnElement[bool]:
    """`column` starts with `prefix`, written so a B-tree index on the column serves it: on SQLite a
    range (its BINARY collation orders by code point, so the range is exactly the prefix); elsewhere
    an escaped LIKE (PostgreSQL serves it from a pattern_ops index, and a range would be unsafe under
    a linguistic collation)."""
    if dialect == "sqlite":
        return and_(column >= prefix, column < prefix + "\U0010ffff")
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(escaped + "%", escape="\\")  # type: ignore[no-any-return]


class IdFilter:
    """`column IN (the ids)` with the ids in one bound parameter, however many there are and however often
    a statement repeats it: a JSON array read by json_each on SQLite (the database walks an index on the
    column once per id), an array (= ANY) on PostgreSQL. A Select of ids is used as it is."""

    def __init__(self, dialect: str, ids: Collection[int] | Select[Any]) -> None:
        self.select = ids if isinstance(ids, Select) else None
        self.postgres = dialect == "postgresql"
        self.ids = [] if isinstance(ids, Select) else sorted({int(i) for i in ids})

    def __call__(self, column: Any) -> ColumnElement[bool]:
        if self.select is not None:
            return column.in_(self.select)  # type: ignore[no-any-return]
        if self.postgres:
            return column == any_(bindparam(None, self.ids, type_=ARRAY(BigInteger)))  # type: ignore[no-any-return]
        listed = func.json_each(bindparam(None, orjson.dumps(self.ids).decode())).table_valued("value")
        return column.in_(select(listed.c.value))  # type: ignore[no-any-return]
