"""Lifecycle stages as a contact moves on and as time passes (the frozen clock; the workspace is in Shanghai)."""

from __future__ import annotations

import pytest
from scoring_helpers import SHANGHAI, contact_id, event, mount_scoring, reasons, row, score, send


@pytest.fixture(autouse=True)
def _scoring_routes(app) -> None:  # type: ignore[no-untyped-def]
    mount_scoring(app)


def test_a_contact_moves_through_the_stages_then_goes_quiet(tenant, db, clock) -> None:
    ws = tenant.workspace_id
    local = clock.now.astimezone(SHANGHAI)  # 2026-11-23 10:00 in Shanghai
    send(db, ws, [event(1, "contact.added", local)])
    me = contact_id(db, ws, 1)

    def stage() -> tuple[str | None, list[str]]:
        score(db, ws, clock.now)
        found = row(db, me)
        return found.lifecycle_stage, reasons(db, ws, me)["lifecycle"]

    assert stage() == ("acquired", ["acquired: added on 2026-11-23, no engagement yet"])
    send(db, ws, [event(1, "content.viewed", local)])
    assert stage() == ("activated", ["activated: first engaged on 2026-11-23"])
    clock.advance(days=2)
    send(db, ws, [event(1, "order.paid", clock.now, amount=88)])
    assert stage() == ("customer", ["customer: 1 paid order on 2026-11-25"])
    send(db, ws, [event(1, "order.paid", clock.now, amount=12)])
    assert stage() == ("repeat_customer", ["repeat customer: 2 paid orders, last on 2026-11-25"])
    send(db, ws, [event(1, "referral.invited", clock.now)])
    assert stage() == (
        "advocate",
        ["advocate: 2 paid orders and 1 advocate event (referral.invited, content.shared)"],
    )
    clock.advance(days=29)
    assert stage()[0] == "advocate"
    clock.advance(days=1)
    assert stage() == (
        "at_risk",
        ["at risk (advocate): no activity for 30 days (last active 2026-11-25); at risk after 30 days"],
    )
    clock.advance(days=60)
    assert stage() == (
        "churned",
        ["churned (advocate): no activity for 90 days (last active 2026-11-25); churned after 90 days"],
    )
    # One message and they are back where they were.
    send(db, ws, [event(1, "message.received", clock.now, text="还在吗")])
    assert stage()[0] == "advocate"


def test_silence_counts_from_the_day_added_when_nothing_happened(tenant, db, clock) -> None:
    ws = tenant.workspace_id
    send(db, ws, [event(2, "contact.added", clock.now)])
    me = contact_id(db, ws, 2)
    clock.advance(days=31)
    score(db, ws, clock.now)
    assert row(db, me).lifecycle_stage == "at_risk"
    assert reasons(db, ws, me)["lifecycle"] == [
        "at risk (acquired): no activity since added on 2026-11-23, 31 days ago; at risk after 30 days"
    ]


def test_the_silence_thresholds_follow_the_settings(tenant, db, clock) -> None:
    ws = tenant.workspace_id
    send(db, ws, [event(3, "content.viewed", clock.now)])
    me = contact_id(db, ws, 3)
    put = tenant.client.put(
        "/api/v1/scoring/settings", json={"lifecycle": {"at_risk_after_days": 7, "churned_after_days": 14}}
    )
    assert put.status_code == 200, put.text
    clock.advance(days=7)
    score(db, ws, clock.now)
    assert row(db, me).lifecycle_stage == "at_risk"
    clock.advance(days=7)
    score(db, ws, clock.now)
    assert row(db, me).lifecycle_stage == "churned"
