"""RFM quintiles and value tiers on a known population; refunds; incremental runs reuse the cut points."""

from __future__ import annotations

import datetime as dt

import pytest
from scoring_helpers import contact_id, event, mount_scoring, reasons, row, score, send


@pytest.fixture(autouse=True)
def _scoring_routes(app) -> None:  # type: ignore[no-untyped-def]
    mount_scoring(app)


def _population(db, ws: int, now: dt.datetime) -> dict[int, int]:  # type: ignore[no-untyped-def]
    """Customer k (1-5): k orders of k×100 yuan, the last one (6-k)×10 days ago. Plus one who never bought."""
    events = [event(0, "content.viewed", now)]
    for k in range(1, 6):
        last = now - dt.timedelta(days=(6 - k) * 10)
        events += [event(k, "order.paid", last - dt.timedelta(days=i), amount=k * 100) for i in range(k)]
    send(db, ws, events)
    return {k: contact_id(db, ws, k) for k in range(6)}


def test_quintiles_scores_tiers_and_reasons(tenant, db, clock) -> None:
    ws = tenant.workspace_id
    ids = _population(db, ws, clock.now)
    assert score(db, ws, clock.now) == 6
    got = {k: (row(db, c).r_score, row(db, c).f_score, row(db, c).m_score) for k, c in ids.items()}
    assert got == {0: (None, None, None), 1: (1, 1, 1), 2: (2, 2, 2), 3: (3, 3, 3), 4: (4, 4, 4), 5: (5, 5, 5)}
    tiers = {k: row(db, c).value_tier for k, c in ids.items()}
    assert tiers == {0: None, 1: "lost", 2: "low_frequency", 3: "ordinary", 4: "loyal", 5: "loyal"}

    # Recency days 10..50, orders 1..5, net paid ¥100..¥2,500: the cut points are the 1st-4th of each.
    cuts = tenant.client.get("/api/v1/scoring/settings").json()["rfm_cuts"]
    assert cuts["recency_days"] == [10, 20, 30, 40]
    assert cuts["frequency"] == [1, 2, 3, 4]
    assert cuts["monetary_yuan"] == [100, 400, 900, 1600]
    assert cuts["customers"] == 5

    five = reasons(db, ws, ids[5])
    assert five["rfm"] == [
        "R 5 (last order 10 days ago ≤ 10)",
        "F 5 (5 paid orders > 4)",
        "M 5 (net paid ¥2,500.00 > ¥1,600.00)",
    ]
    assert five["value_tier"] == ["tier loyal: R≥4 F≥4 M≥4"]
    assert five["intention"] == ["no intention score: bought (5 × order.paid); it scores people who have not bought"]
    three = reasons(db, ws, ids[3])
    assert three["rfm"][0] == "R 3 (last order 30 days ago > 20 and ≤ 30)"
    assert three["value_tier"] == ["tier ordinary: any R/F/M"]
    assert reasons(db, ws, ids[1])["value_tier"] == ["tier lost: R≤1"]
    assert reasons(db, ws, ids[0])["rfm"] == ["no RFM scores: no order.paid yet"]
    assert (row(db, ids[0]).intention_score, row(db, ids[0]).intention_level) == (2.0, "none")


def test_an_incremental_run_scores_against_the_stored_cut_points(tenant, db, clock) -> None:
    ws = tenant.workspace_id
    ids = _population(db, ws, clock.now)
    score(db, ws, clock.now)
    before = tenant.client.get("/api/v1/scoring/settings").json()["rfm_cuts"]
    send(db, ws, [event(9, "order.paid", clock.now, amount=450)])
    newcomer = contact_id(db, ws, 9)
    assert score(db, ws, clock.now, [newcomer]) == 1
    assert tenant.client.get("/api/v1/scoring/settings").json()["rfm_cuts"] == before
    assert (row(db, newcomer).r_score, row(db, newcomer).f_score, row(db, newcomer).m_score) == (5, 1, 3)
    assert reasons(db, ws, newcomer)["rfm"][2] == "M 3 (net paid ¥450.00 > ¥400.00 and ≤ ¥900.00)"
    # The others keep what the full run gave them until the next full run.
    assert row(db, ids[5]).r_score == 5
    score(db, ws, clock.now)
    after = tenant.client.get("/api/v1/scoring/settings").json()["rfm_cuts"]
    assert after["customers"] == 6


def test_refunds_lower_monetary_and_fixed_cuts_replace_quintiles(tenant, db, clock) -> None:
    ws = tenant.workspace_id
    settings = {
        "rfm": {
            "fixed_cuts": {
                "recency_days": [7, 30, 90, 180],
                "frequency": [1, 2, 3, 5],
                "monetary_yuan": [100, 300, 800, 2000],
            }
        },
        "value_tiers": [{"tier": "high_quality", "m_min": 3}, {"tier": "ordinary"}],
    }
    assert tenant.client.put("/api/v1/scoring/settings", json=settings).status_code == 200
    now = clock.now
    send(
        db,
        ws,
        [
            event(1, "order.paid", now - dt.timedelta(days=3), amount=500),
            event(1, "order.paid", now - dt.timedelta(days=40), amount=299.5),
            event(1, "order.refunded", now - dt.timedelta(days=2), amount=199.5),
        ],
    )
    me = contact_id(db, ws, 1)
    score(db, ws, now)
    found = row(db, me)
    assert (found.r_score, found.f_score, found.m_score) == (5, 2, 3)
    assert reasons(db, ws, me)["rfm"] == [
        "R 5 (last order 3 days ago ≤ 7)",
        "F 2 (2 paid orders > 1 and ≤ 2)",
        "M 3 (net paid ¥600.00, ¥199.50 refunded > ¥300.00 and ≤ ¥800.00)",
    ]
    assert found.value_tier == "high_quality"
    assert reasons(db, ws, me)["value_tier"] == ["tier high_quality: M≥3"]
