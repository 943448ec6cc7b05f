"""Journeys' part of tests/test_security.py: workspace B's journey (published, active, one contact in it)
and the bodies of the journey write routes naming B's objects."""

from __future__ import annotations

from typing import Any

REFERENCES_B = {
    ("POST", "/api/v1/journeys"),
    ("POST", "/api/v1/journeys/validate"),
}


def _definition(ids: dict[str, Any]) -> dict[str, Any]:
    return {
        "trigger": {"segment": ids["segment_id"]},
        "steps": [
            {"id": "tag", "type": "tag", "add": [ids["tag_id"]]},
            {"id": "wait", "type": "wait", "for": {"days": 3}},
        ],
    }


def seed_b(client: Any, db: Any, ids: dict[str, Any]) -> dict[str, Any]:
    created = client.post("/api/v1/journeys", json={"name": "ZZB旅程", "definition": _definition(ids)})
    assert created.status_code == 201, created.text
    journey_id = created.json()["id"]
    assert client.post(f"/api/v1/journeys/{journey_id}/publish").status_code == 200
    assert client.post(f"/api/v1/journeys/{journey_id}/activate").status_code == 200
    enrolled = client.post(f"/api/v1/journeys/{journey_id}/enrolments", json={"contact_ids": [ids["contact_id"]]})
    assert enrolled.status_code == 200, enrolled.text
    return {"journey_id": journey_id, "enrolment_id": enrolled.json()["enrolled"][0]["enrolment_id"], "version": 1}


def request_bodies(b: dict[str, Any]) -> dict[tuple[str, str], Any]:
    return {
        ("POST", "/api/v1/journeys"): {"name": "A旅程", "definition": _definition(b)},
        ("POST", "/api/v1/journeys/validate"): {"definition": _definition(b)},
        ("POST", "/api/v1/journeys/from-template"): {"template": "onboarding", "name": "A新客"},
        ("PATCH", "/api/v1/journeys/{journey_id}"): {"name": "hijacked", "definition": _definition(b)},
        ("POST", "/api/v1/journeys/{journey_id}/enrolments"): {"contact_ids": [b["contact_id"]]},
    }
