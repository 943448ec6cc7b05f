"""The intention level kept per contact (siyu.scoring.intention) gives a full run exactly the plain
evaluation over the window's daily counts (rules.intention): whatever the days between runs, late
events, events from outside the window, negative points and changed settings."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scoring_helpers import contact_id, event, rows
from sqlalchemy import func, select

from siyu.contacts.models import Contact
from siyu.events.service import ingest
from siyu.scoring import intention, service
from siyu.scoring.config import parse_config
from siyu.scoring.models import ContactIntention, IntentionBasis
from siyu.scoring.rules import Decay, intention_fingerprint
from siyu.usermodel import pipeline
from siyu.workspaces.service import create_workspace

_workspaces = itertools.count()

POINTS = [
    {"event_type": "message.received", "points": 10, "label": "consulted"},
    {"event_type": "price.viewed", "points": 2.5, "label": "viewed a price"},
    {"event_type": "content.shared", "points": -3, "label": "shared"},
]
SETTINGS = {"intention": {"rules": POINTS, "half_life_days": 3, "window_days": 20}}
CHANGED = {"intention": {"rules": POINTS[:2], "half_life_days": 4.5, "window_days": 25}}
TYPES = ["message.received", "price.viewed", "content.shared", "contact.added"]

events = st.lists(
    st.tuples(
        st.integers(0, 4),  # who
        st.sampled_from(TYPES),
        st.integers(0, 30),  # days ago: some before the window, some late arrivals
        st.integers(-6, 20),  # hours earlier (negative: later today, up to the 1-day future limit)
    ),
    max_size=10,
)
rounds = st.lists(
    st.tuples(st.integers(0, 30), events, st.booleans()),  # days the clock moves, new events, change settings
    min_size=1,
    max_size=4,
)


def _as_events(drawn: list[tuple[int, str, int, int]], now: dt.datetime) -> list[dict[str, Any]]:
    return [event(who, type, now - dt.timedelta(days=days, hours=hours)) for who, type, days, hours in drawn]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=events, later=rounds)
def test_kept_levels_equal_the_plain_evaluation(db, clock, first, later) -> None:  # type: ignore[no-untyped-def]
    start = clock.now
    with db.transaction() as session:
        ws = create_workspace(session, f"w{next(_workspaces)}").id
        service.save_config(session, ws, parse_config(SETTINGS))
    try:
        _run(db, ws, clock, first, later)
    finally:
        clock.now = start


def _run(db, ws, clock, first, later) -> None:  # type: ignore[no-untyped-def]
    def arrive(drawn: list[tuple[int, str, int, int]]) -> None:
        # through the live path: ingestion, then the pipeline's steps (computed.apply_events folds, the
        # touched contacts are scored: from the kept level when it holds today's window, else the counts)
        if drawn:
            with db.transaction() as session:
                ingest(session, ws, _as_events(drawn, clock.now), region="CN")
        pipeline.catch_up(db, now=clock.now)
        _assert_rows_fold_the_counts(db, ws)
        scored = rows(db, ws)
        with db.transaction(write=False) as session:
            for contact in {contact_id(db, ws, who) for who, *_ in drawn}:
                plain = service.evaluate(session, ws, contact, now=clock.now)
                assert plain is not None
                assert (plain["intention_score"], plain["intention_level"]) == scored[contact][5:7], contact

    arrive(first)
    with db.transaction() as session:
        service.recompute(session, ws, contact_ids=None, now=clock.now)
    for days, drawn, change in later:
        clock.advance(days=days)
        if change:
            with db.transaction() as session:
                service.save_config(session, ws, parse_config(CHANGED))
        arrive(drawn)
        with db.transaction() as session:
            service.recompute(session, ws, contact_ids=None, now=clock.now)
        full = rows(db, ws)
        with db.transaction(write=False) as session:
            for contact, stored in full.items():
                plain = service.evaluate(session, ws, contact, now=clock.now)
                assert plain is not None
                assert (plain["intention_score"], plain["intention_level"]) == stored[5:7], contact
            # the run read the kept levels, brought to today's window
            basis = session.get(IntentionBasis, ws)
            assert basis is not None
            window = service.load_config(session, ws).intention.window_days
            today = clock.now.astimezone(dt.timezone(dt.timedelta(hours=8))).date()
            assert basis.floor_day == today - dt.timedelta(days=window - 1)
            oldest = session.scalar(
                select(func.min(ContactIntention.anchor_day)).where(ContactIntention.workspace_id == ws)
            )
            assert oldest is None or oldest >= basis.floor_day


def _kept(session: Any, ws: int) -> set[tuple[int, dt.date, int]]:
    kept = ContactIntention
    found = session.execute(select(kept.contact_id, kept.anchor_day, kept.total).where(kept.workspace_id == ws))
    return {tuple(row) for row in found}


def _assert_rows_fold_the_counts(db, ws: int) -> None:  # type: ignore[no-untyped-def]
    """The rows the live path kept (folded again when a contact's counts changed, the days that left the
    window subtracted when a full run moved the floor) are, to the billionth, those a fold of every
    contact's daily counts from the floor gives: the score comparisons alone check them to the cent."""
    session = db.session()
    try:
        basis, settings = session.get(IntentionBasis, ws), intention.settings(session, ws)
        if basis is None or basis.fingerprint != intention_fingerprint(settings):
            return  # no rows kept before a full run made a basis for these settings
        live = _kept(session, ws)
        ids = sorted(session.scalars(select(Contact.id).where(Contact.workspace_id == ws)))
        decay = Decay(settings)
        intention._fold(session, ws, decay, basis.floor_day.toordinal(), ids=ids)
        assert live == _kept(session, ws)
    finally:
        session.rollback()
        session.close()


def test_the_pipeline_scores_from_the_kept_level_once_a_full_run_moved_the_floor(db, clock, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Same day as a full run: the touched contacts' intention comes from contact_intention (one row
    each), not from their daily counts, and equals the plain evaluation; the next day, before the hourly
    full run moved the floor, the counts are read again."""
    from siyu.scoring import repository

    with db.transaction() as session:
        ws = create_workspace(session, f"w{next(_workspaces)}").id
        service.save_config(session, ws, parse_config(SETTINGS))
    drawn = [(0, "message.received", 2, 0), (0, "price.viewed", 0, 1), (1, "message.received", 5, 0)]
    with db.transaction() as session:
        ingest(session, ws, _as_events(drawn, clock.now), region="CN")
    pipeline.catch_up(db, now=clock.now)
    with db.transaction() as session:
        service.recompute(session, ws, contact_ids=None, now=clock.now)

    reads: list[object] = []
    counts = repository.intention_days

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        reads.append(args[-1])
        return counts(*args, **kwargs)

    monkeypatch.setattr(repository, "intention_days", counted)
    clock.advance(hours=1)
    later = [(0, "price.viewed", 0, 0), (1, "content.shared", 0, 0), (2, "message.received", 0, 0)]
    with db.transaction() as session:
        ingest(session, ws, _as_events(later, clock.now), region="CN")
    pipeline.catch_up(db, now=clock.now)
    assert reads == []  # the kept levels served
    scored = rows(db, ws)
    with db.transaction(write=False) as session:
        for who in (0, 1, 2):
            contact = contact_id(db, ws, who)
            plain = service.evaluate(session, ws, contact, now=clock.now)
            assert plain is not None and plain["intention_score"] > 0
            assert (plain["intention_score"], plain["intention_level"]) == scored[contact][5:7]

    reads.clear()  # evaluate (the reasons) reads the counts
    clock.advance(days=1)
    with db.transaction() as session:
        ingest(session, ws, _as_events([(0, "price.viewed", 0, 0)], clock.now), region="CN")
    pipeline.catch_up(db, now=clock.now)
    assert len(reads) == 1  # a new day, the floor not moved yet: the daily counts
    with db.transaction(write=False) as session:
        plain = service.evaluate(session, ws, contact_id(db, ws, 0), now=clock.now)
    assert plain is not None
    assert (plain["intention_score"], plain["intention_level"]) == rows(db, ws)[contact_id(db, ws, 0)][5:7]
