"""The hand-written fast checks of ingestion agree with the pydantic models that document the rules."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from siyu.errors import ValidationFailed
from siyu.events.catalog import STANDARD_EVENT_TYPES
from siyu.events.validation import checker_for, prepare

NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats(-1e6, 1e6) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def properties(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    event_type = draw(st.sampled_from(sorted(STANDARD_EVENT_TYPES)))
    model = STANDARD_EVENT_TYPES[event_type][0]
    names = [*model.model_fields, "extra"]
    chosen = draw(st.lists(st.sampled_from(names), unique=True))
    return event_type, {name: draw(json_values) for name in chosen}


def _numeric_equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_numeric_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_numeric_equal(x, y) for x, y in zip(a, b, strict=True))
    # 99 and 99.0 are the same amount; True and 1 are not the same value.
    return bool(a == b) and isinstance(a, bool) == isinstance(b, bool)


# generation is slow on a busy 2-core machine; that is the health check's business, not this test's
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(properties())
def test_the_fast_path_accepts_only_what_pydantic_accepts_unchanged(case: tuple[str, dict[str, Any]]) -> None:
    event_type, value = case
    model = STANDARD_EVENT_TYPES[event_type][0]
    checker = checker_for(event_type)
    try:
        expected: dict[str, Any] | None = model.model_validate(value).model_dump(exclude_unset=True)
    except ValidationError:
        expected = None
    if checker.fits(value):
        assert expected is not None, f"fast path accepted what pydantic refuses: {value}"
        assert _numeric_equal(expected, value)
    try:
        got: dict[str, Any] | None = checker.check(value)
    except ValidationError:
        got = None
    assert (got is None) == (expected is None)
    if got is not None and expected is not None:
        assert _numeric_equal(got, expected)


def _one(**event: Any) -> list[Any]:
    base: dict[str, Any] = {"id": "e1", "type": "form.submitted", "contact": {"email": "a@b.cn"}}
    base.update(event)
    return prepare([base], tz=SHANGHAI, region="CN", now=NOW)


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2026-11-23T10:00:00+08:00", dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)),
        ("2026-11-23T02:00:00Z", dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)),
        ("2026-11-23 10:00:00", dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)),  # workspace time zone
        (1795399200, dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)),  # seconds
        (1795399200000, dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)),  # milliseconds
        (None, NOW),
    ],
)
def test_timestamps(timestamp: Any, expected: dt.datetime) -> None:
    (event,) = _one(timestamp=timestamp)
    assert event.occurred_at == expected


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"timestamp": True}, "timestamp"),
        ({"id": 7}, "id"),
        ({"id": "x" * 129}, "id"),
        ({"type": None}, "type"),
        ({"contact": "13800138000"}, "contact"),
        ({"contact": {"id": "42"}}, "contact.id"),
        ({"properties": [1]}, "properties"),
        ({"colour": "red"}, "colour"),
        ({"type": "order.paid", "properties": {"order_id": "1", "amount": -1}}, "properties.amount"),
        ({"type": "group.joined", "properties": {}}, "properties.group_id"),
    ],
)
def test_each_problem_names_its_field(event: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        _one(**event)
    assert [(d["index"], d["field"]) for d in caught.value.details] == [(0, field)]


def test_coercible_properties_are_stored_coerced() -> None:
    (event,) = _one(type="order.paid", properties={"order_id": "A1", "amount": "12.50", "note": "gift"})
    assert event.properties == {"order_id": "A1", "amount": 12.5, "note": "gift"}


def test_a_non_object_event_is_named() -> None:
    with pytest.raises(ValidationFailed) as caught:
        prepare([["not", "an", "event"]], tz=SHANGHAI, region="CN", now=NOW)
    assert caught.value.details == [{"index": 0, "field": "event", "reason": "must be an object"}]
