"""Intention: points × count × 0.5^(days ago / half-life) per local day, rounded to 2 decimals; buyers get none."""

from __future__ import annotations

import datetime as dt

import pytest
from scoring_helpers import SHANGHAI, contact_id, event, mount_scoring, reasons, row, score, send


@pytest.fixture(autouse=True)
def _scoring_routes(app) -> None:  # type: ignore[no-untyped-def]
    mount_scoring(app)


def test_decay_numbers_are_exact(tenant, db, clock) -> None:
    ws = tenant.workspace_id
    today = clock.now.astimezone(SHANGHAI).replace(hour=9)  # 2026-11-23 09:00 local

    def ago(days: int) -> dt.datetime:
        return today - dt.timedelta(days=days)

    send(
        db,
        ws,
        [
            event(1, "message.received", ago(0), text="多少钱"),
            event(1, "message.received", ago(7), text="在吗"),
            event(1, "message.received", ago(7), text="课程呢"),
            event(1, "price.viewed", ago(14)),
            event(1, "content.viewed", ago(3)),
            event(1, "content.viewed", ago(90)),  # outside the 90-day window: counts nothing
            event(1, "contact.added", ago(100)),  # not a scored type
        ],
    )
    me = contact_id(db, ws, 1)
    score(db, ws, clock.now)
    found = row(db, me)
    # 10 + 10×2×0.5 + 15×0.25 + 2×0.5^(3/7) = 20 + 3.75 + 1.48599... = 25.24
    assert found.intention_score == 25.24
    assert found.intention_level == "weak"
    assert reasons(db, ws, me)["intention"] == [
        "intention 25.24 = consulted ×3 (30 → 20 after decay) + viewed a price ×1 (15 → 3.75 after decay)"
        " + viewed content ×1 (2 → 1.49 after decay)",
        "weak: 25.24 ≥ 10, below strong at 40 (points halve every 7 days)",
    ]

    clock.advance(days=7)
    score(db, ws, clock.now)
    # 10×0.5 + 20×0.25 + 15×0.125 + 2×0.5^(10/7) = 5 + 5 + 1.875 + 0.74299... = 12.62
    assert row(db, me).intention_score == 12.62

    send(db, ws, [event(1, "form.submitted", clock.now), event(1, "live.attended", clock.now)])
    score(db, ws, clock.now)
    assert row(db, me).intention_score == 47.62
    assert row(db, me).intention_level == "strong"
    assert reasons(db, ws, me)["intention"][1] == "strong: 47.62 ≥ 40 (points halve every 7 days)"


def test_the_points_model_follows_the_settings(tenant, db, clock) -> None:
    ws = tenant.workspace_id
    settings = {
        "intention": {
            "rules": [{"event_type": "exam.viewed", "points": 8, "label": "viewed exam content"}],
            "half_life_days": 2,
            "weak_threshold": 5,
            "strong_threshold": 12,
        }
    }
    assert tenant.client.put("/api/v1/scoring/settings", json=settings).status_code == 200
    send(db, ws, [event(1, "exam.viewed", clock.now - dt.timedelta(days=2)), event(1, "message.received", clock.now)])
    me = contact_id(db, ws, 1)
    score(db, ws, clock.now)
    assert (row(db, me).intention_score, row(db, me).intention_level) == (4.0, "none")
    assert reasons(db, ws, me)["intention"] == [
        "intention 4 = viewed exam content ×1 (8 → 4 after decay)",
        "none: 4 < 5 (points halve every 2 days)",
    ]


def test_buyers_and_quiet_people(tenant, db, clock) -> None:
    ws = tenant.workspace_id
    send(db, ws, [event(1, "message.received", clock.now), event(1, "order.paid", clock.now)])
    send(db, ws, [event(2, "contact.added", clock.now)])
    buyer, quiet = contact_id(db, ws, 1), contact_id(db, ws, 2)
    score(db, ws, clock.now)
    assert (row(db, buyer).intention_score, row(db, buyer).intention_level) == (None, None)
    assert (row(db, quiet).intention_score, row(db, quiet).intention_level) == (0.0, "none")
    assert reasons(db, ws, quiet)["intention"][0] == "intention 0: no scored events in the last 90 days"
