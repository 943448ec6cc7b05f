"""The scoring API: settings and refusals naming the field, recompute, a contact's scores and who sees them."""

from __future__ import annotations

import pytest
from scoring_helpers import contact_id, event, mount_scoring, send
from sqlalchemy import select

from siyu.jobs.models import Job
from siyu.scoring.config import ScoringConfig
from siyu.staff.models import Role


@pytest.fixture(autouse=True)
def _scoring_routes(app) -> None:  # type: ignore[no-untyped-def]
    mount_scoring(app)


def test_defaults_then_a_partial_put_queues_a_recompute(tenant, db, clock) -> None:
    got = tenant.client.get("/api/v1/scoring/settings").json()
    assert got == {"config": ScoringConfig().model_dump(mode="json"), "rfm_cuts": None, "updated_at": None}
    assert got["config"]["lifecycle"]["at_risk_after_days"] == 30
    assert got["config"]["rfm"]["order_event"] == "order.paid"
    assert [t["tier"] for t in got["config"]["value_tiers"]] == [
        "loyal",
        "high_quality",
        "lost",
        "low_frequency",
        "ordinary",
    ]

    put = tenant.client.put("/api/v1/scoring/settings", json={"intention": {"half_life_days": 3}})
    assert put.status_code == 200, put.text
    saved = tenant.client.get("/api/v1/scoring/settings").json()
    assert saved["config"]["intention"]["half_life_days"] == 3
    assert saved["config"]["intention"]["rules"] == got["config"]["intention"]["rules"]
    assert saved["updated_at"] is not None
    with db.transaction(write=False) as session:
        jobs = session.scalars(select(Job.name).where(Job.workspace_id == tenant.workspace_id)).all()
    assert jobs == ["scoring.recompute"]


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"lifecycle": {"at_risk_after_days": 120}}, "lifecycle.churned_after_days", "more than at_risk_after_days"),
        ({"lifecycle": {"engagement_events": ["Viewed Page"]}}, "lifecycle.engagement_events[0]", "pattern"),
        ({"rfm": {"fixed_cuts": {"recency_days": [30, 7, 90, 180]}}}, "rfm.fixed_cuts.recency_days", "not decrease"),
        ({"value_tiers": [{"tier": "vip"}]}, "value_tiers[0].tier", "loyal"),
        ({"value_tiers": [{"tier": "loyal", "f_min": 4, "f_max": 2}]}, "value_tiers[0].f_max", "below f_min"),
        ({"intention": {"weak_threshold": 50}}, "intention.strong_threshold", "more than weak_threshold"),
        ({"intention": {"half_life_days": 0}}, "intention.half_life_days", "greater than 0"),
        (
            {"transaction_stages": [{"key": "a", "label": "A", "moved_by": [{"event_type": "x.y", "segment_id": 1}]}]},
            "transaction_stages[0].moved_by[0]",
            "either event_type",
        ),
        ({"lifecycle": {"at_risk_days": 5}}, "lifecycle.at_risk_days", "Extra inputs"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(tenant, body, field, reason) -> None:  # type: ignore[no-untyped-def]
    response = tenant.client.put("/api/v1/scoring/settings", json=body)
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    assert [d["field"] for d in details] == [field]
    assert reason in details[0]["reason"]


def test_recompute_and_a_contacts_scores(tenant, db, clock) -> None:
    send(db, tenant.workspace_id, [event(1, "message.received", clock.now), event(2, "order.paid", clock.now)])
    lead = contact_id(db, tenant.workspace_id, 1)
    # Not scored by a run yet: computed for the answer, and said so.
    early = tenant.client.get(f"/api/v1/contacts/{lead}/scores").json()
    assert early["stored"] is False and early["intention_score"] == 10.0
    assert tenant.client.post("/api/v1/scoring/recompute").json() == {"contacts": 2}
    got = tenant.client.get(f"/api/v1/contacts/{lead}/scores").json()
    assert got["stored"] is True
    assert got["lifecycle_stage"] == "activated"
    assert (got["intention_score"], got["intention_level"]) == (10.0, "weak")
    assert got["reasons"]["intention"][0] == "intention 10 = consulted ×1 (10 → 10 after decay)"
    assert {k: got[k] for k in ("r_score", "value_tier", "transaction_stage")} == {
        "r_score": None,
        "value_tier": None,
        "transaction_stage": None,
    }
    assert tenant.client.get("/api/v1/contacts/999999/scores").status_code == 404


def test_consultants_read_their_own_contacts_scores_and_cannot_change_settings(tenant, db, clock) -> None:
    staff_id, consultant = tenant.as_staff("gu@a.cn", Role.consultant)
    mine = tenant.client.post("/api/v1/contacts", json={"name": "我的", "owner_id": staff_id}).json()["id"]
    theirs = tenant.client.post("/api/v1/contacts", json={"name": "别人的"}).json()["id"]
    assert consultant.get(f"/api/v1/contacts/{mine}/scores").status_code == 200
    assert consultant.get(f"/api/v1/contacts/{theirs}/scores").status_code == 404
    assert consultant.get("/api/v1/scoring/settings").status_code == 200
    assert consultant.put("/api/v1/scoring/settings", json={}).status_code == 403
    assert consultant.post("/api/v1/scoring/recompute").status_code == 403
