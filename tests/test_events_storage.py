"""The SQLite fast paths of event inserts and reads write and read exactly what SQLAlchemy's own types would."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from siyu.events.models import Event
from siyu.kit.sql import from_sqlite_datetime, sqlite_datetime

_dialect = sqlite.dialect()
_sa = Event.__table__.c.occurred_at.type.dialect_impl(_dialect).bind_processor(_dialect)
_sa_read = Event.__table__.c.occurred_at.type.dialect_impl(_dialect).result_processor(_dialect, None)


@given(st.datetimes(min_value=dt.datetime(1000, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.timezones()))
def test_datetimes_are_written_as_sqlalchemy_writes_them(value: dt.datetime) -> None:
    assert _sa is not None
    assert sqlite_datetime(value) == _sa(value)


@given(st.datetimes(min_value=dt.datetime(1000, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.timezones()))
def test_datetimes_are_read_as_sqlalchemy_reads_them(value: dt.datetime) -> None:
    assert _sa is not None and _sa_read is not None
    stored = _sa(value)
    read = from_sqlite_datetime(stored)
    assert read == _sa_read(stored)
    assert read.tzinfo is dt.UTC
    assert from_sqlite_datetime(stored[:19]) == _sa_read(stored[:19])  # written without microseconds (SQL)
