"""An incremental run over the contacts a batch touched leaves exactly the rows a full run writes.

RFM cut points are fixed here: with quintiles a full run moves them on purpose (incremental runs reuse
the stored ones until the next full run, see test_scoring_rfm).
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scoring_helpers import event, rows, score, send
from sqlalchemy import select

from siyu.events.models import Event
from siyu.scoring import service
from siyu.scoring.config import parse_config
from siyu.scoring.service import save_config
from siyu.workspaces.service import create_workspace

_workspaces = itertools.count()

CONFIG = {
    "rfm": {
        "fixed_cuts": {"recency_days": [7, 30, 60, 90], "frequency": [1, 2, 3, 4], "monetary_yuan": [10, 100, 200, 400]}
    },
    "lifecycle": {"at_risk_after_days": 20, "churned_after_days": 60},
    "intention": {"half_life_days": 5, "window_days": 60},
    "transaction_stages": [
        {"key": "registered", "label": "报名", "moved_by": [{"event_type": "course.registered"}]},
        {
            "key": "passed",
            "label": "通过",
            "moved_by": [{"event_type": "exam.taken", "property": "passed", "equals": True}],
        },
    ],
}
NUMBERS = (
    "lifecycle_stage",
    "r_score",
    "f_score",
    "m_score",
    "value_tier",
    "intention_score",
    "intention_level",
    "transaction_stage",
)
TYPES = [
    "contact.added",
    "message.received",
    "content.viewed",
    "price.viewed",
    "form.submitted",
    "order.paid",
    "order.refunded",
    "referral.invited",
    "course.registered",
    "exam.taken",
]
events = st.lists(
    st.tuples(
        st.integers(0, 5),  # who
        st.sampled_from(TYPES),
        st.integers(0, 100),  # days ago
        st.integers(-12, 23),  # hours earlier (negative: later today, up to the 1-day future limit)
        st.sampled_from([9.9, 99.5, 150, 300]),
        st.booleans(),
    ),
    max_size=14,
)


def _as_events(drawn: list[tuple[Any, ...]], now: dt.datetime) -> list[dict[str, Any]]:
    out = []
    for who, type, days, hours, amount, passed in drawn:
        at = now - dt.timedelta(days=days, hours=hours)
        extra: dict[str, Any] = {}
        if type.startswith("order."):
            extra = {"amount": amount}
        elif type == "exam.taken":
            extra = {"passed": passed}
        out.append(event(who, type, at, **extra))
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=events, second=events.filter(bool))
def test_incremental_equals_full(db, clock, first, second) -> None:  # type: ignore[no-untyped-def]
    now = clock.now
    with db.transaction() as session:
        ws = create_workspace(session, f"w{next(_workspaces)}").id
        save_config(session, ws, parse_config(CONFIG))
    if first:
        send(db, ws, _as_events(first, now))
    score(db, ws, now)
    batch = _as_events(second, now)
    send(db, ws, batch)
    with db.transaction(write=False) as session:
        touched = set(
            session.scalars(
                select(Event.contact_id).where(Event.workspace_id == ws, Event.event_id.in_([e["id"] for e in batch]))
            )
        )
    score(db, ws, now, sorted(touched))
    incremental = rows(db, ws)
    score(db, ws, now)
    full = rows(db, ws)
    assert full == incremental
    # The set-based full run agrees with the one-contact evaluation the reasons are built from.
    with db.transaction(write=False) as session:
        for contact, stored in full.items():
            plain = service.evaluate(session, ws, contact, now=now)
            assert plain is not None
            assert tuple(plain[k] for k in NUMBERS) == stored[:-1], contact


def test_an_incremental_run_rewrites_only_the_rows_whose_values_changed(db, clock) -> None:  # type: ignore[no-untyped-def]
    """A touched contact whose scores stay the same keeps its row (computed_at unchanged); one whose
    scores moved gets the new values and time; a contact merged away loses its row."""
    from scoring_helpers import contact_id, row

    from siyu.contacts.merge import merge_contacts
    from siyu.contacts.models import Contact
    from siyu.scoring.models import ContactScore

    now = clock.now
    with db.transaction() as session:
        ws = create_workspace(session, f"w{next(_workspaces)}").id
        save_config(session, ws, parse_config(CONFIG))
    send(
        db,
        ws,
        [event(0, "order.paid", now, amount=99.5), event(1, "content.viewed", now), event(2, "contact.added", now)],
    )
    score(db, ws, now)
    quiet, buyer, gone = contact_id(db, ws, 1), contact_id(db, ws, 0), contact_id(db, ws, 2)
    before = row(db, quiet).computed_at

    later = clock.advance(minutes=5)
    send(db, ws, [event(0, "order.paid", later, amount=300)])
    with db.transaction() as session:
        merge_contacts(session, survivor=session.get(Contact, quiet), merged=session.get(Contact, gone), reason="test")
    assert score(db, ws, later, [quiet, buyer, gone]) == 1  # only the buyer's row is written
    assert row(db, quiet).computed_at == before
    assert row(db, buyer).computed_at == later and row(db, buyer).f_score == 2
    with db.transaction(write=False) as session:
        assert session.get(ContactScore, gone) is None


def test_a_changed_row_is_updated_in_the_columns_that_changed_only(db, clock) -> None:  # type: ignore[no-untyped-def]
    """Setting a column rewrites its index entry even to the same value: a second view moves the intention
    score, and the UPDATE sets that (and computed_at), not the lifecycle stage or the tier."""
    from scoring_helpers import contact_id, row
    from sqlalchemy import event as sa_event
    from sqlalchemy.engine import Engine

    now = clock.now
    with db.transaction() as session:
        ws = create_workspace(session, f"w{next(_workspaces)}").id
        save_config(session, ws, parse_config(CONFIG))
    send(db, ws, [event(0, "content.viewed", now)])
    score(db, ws, now)
    viewer = contact_id(db, ws, 0)
    first = row(db, viewer)

    later = clock.advance(minutes=5)
    send(db, ws, [event(0, "content.viewed", later)])
    updates: list[str] = []

    def note(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("UPDATE CONTACT_SCORE"):
            updates.append(statement)

    sa_event.listen(Engine, "before_cursor_execute", note)
    try:
        assert score(db, ws, later, [viewer]) == 1
    finally:
        sa_event.remove(Engine, "before_cursor_execute", note)
    now_row = row(db, viewer)
    assert now_row.intention_score != first.intention_score and now_row.computed_at == later
    assert now_row.lifecycle_stage == first.lifecycle_stage
    assert len(updates) == 1 and "intention_score" in updates[0]
    assert "lifecycle_stage" not in updates[0] and "value_tier" not in updates[0]
