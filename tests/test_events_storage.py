"""The SQLite fast path of event inserts writes exactly what SQLAlchemy's own types would write."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from siyu.events.models import Event
from siyu.kit.sql import sqlite_datetime

_dialect = sqlite.dialect()
_sa = Event.__table__.c.occurred_at.type.dialect_impl(_dialect).bind_processor(_dialect)


@given(st.datetimes(min_value=dt.datetime(1000, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.timezones()))
def test_datetimes_are_written_as_sqlalchemy_writes_them(value: dt.datetime) -> None:
    assert _sa is not None
    assert sqlite_datetime(value) == _sa(value)
