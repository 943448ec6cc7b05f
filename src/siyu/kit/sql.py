"""Raw SQL for the few hot paths where SQLAlchemy's per-statement work costs more than the query."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import and_
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

CHUNK = 5000  # well under SQLite's 32,766 bound variables


def select_where_in(
    session: Session, sql: str, params: Sequence[Any], values: Sequence[Any]
) -> Iterator[tuple[Any, ...]]:
    """Runs `sql` whose last condition is written `{in}` with `values`, in chunks.

    `sql` uses `{p}` for each fixed parameter, e.g.
    "SELECT event_id FROM event WHERE workspace_id = {p} AND event_id {in}".
    SQLite gets `IN (?, ?, ...)`; PostgreSQL one array parameter, `= ANY(%s)`, so the statement text
    is the same whatever the number of values.
    """
    connection = session.connection()
    sqlite = connection.dialect.name == "sqlite"
    marker = "?" if sqlite else "%s"
    for start in range(0, len(values), CHUNK):
        chunk = list(values[start : start + CHUNK])
        if sqlite:
            statement = sql.format(p=marker, **{"in": f"IN ({', '.join('?' * len(chunk))})"})
            arguments: tuple[Any, ...] = (*params, *chunk)
        else:
            statement = sql.format(p=marker, **{"in": "= ANY(%s)"})
            arguments = (*params, chunk)
        for row in connection.exec_driver_sql(statement, arguments):
            yield tuple(row)


def sqlite_datetime(value: dt.datetime) -> str:
    """An aware datetime as SQLAlchemy stores a UTC DATETIME on SQLite: 'YYYY-MM-DD HH:MM:SS.ffffff'
    (tests/test_events_storage.py holds the two together)."""
    if value.tzinfo is not dt.UTC:
        value = value.astimezone(dt.UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def starts_with(column: Any, prefix: str, dialect: str) -> ColumnElement[bool]:
    """`column` starts with `prefix`, written so a B-tree index on the column serves it: on SQLite a
    range (its BINARY collation orders by code point, so the range is exactly the prefix); elsewhere
    an escaped LIKE (PostgreSQL serves it from a pattern_ops index, and a range would be unsafe under
    a linguistic collation)."""
    if dialect == "sqlite":
        return and_(column >= prefix, column < prefix + "\U0010ffff")
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(escaped + "%", escape="\\")  # type: ignore[no-any-return]
