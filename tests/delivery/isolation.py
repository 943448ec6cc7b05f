"""Delivery's part of tests/test_security.py: workspace B's delivery, opt-out and settings, and the bodies
of delivery's write routes naming B's objects."""

from __future__ import annotations

from typing import Any

REFERENCES_B = {
    ("POST", "/api/v1/delivery/deliveries"),
    ("POST", "/api/v1/delivery/opt-outs"),
    ("POST", "/api/v1/delivery/plan"),
}
PATH_ID_ALIASES = {"/api/v1/delivery/opt-outs/": {"contact_id": "opted_out_contact_id"}}


def seed_b(client: Any, db: Any, ids: dict[str, Any]) -> dict[str, Any]:
    settings = client.put(
        "/api/v1/delivery/settings", json={"webhook_url": "https://zzb.example.com/hook", "opt_out_words": ["ZZB退"]}
    )
    assert settings.status_code == 200, settings.text
    sent = client.post(
        "/api/v1/delivery/deliveries",
        json={"contact_id": ids["contact_id"], "step": "ZZB-1", "channel": "sandbox", "text": "ZZB消息"},
    )
    assert sent.status_code == 201, sent.text
    opted = client.post("/api/v1/delivery/opt-outs", json={"contact_id": ids["other_contact_id"], "note": "ZZB"})
    assert opted.status_code == 201, opted.text
    account = client.put(f"/api/v1/delivery/staff-accounts/{ids['staff_id']}", json={"send_limit": 7})
    assert account.status_code == 200, account.text
    return {"delivery_id": sent.json()["id"], "opted_out_contact_id": ids["other_contact_id"]}


def request_bodies(b: dict[str, Any]) -> dict[tuple[str, str], Any]:
    return {
        ("PUT", "/api/v1/delivery/settings"): {"caps": {"day": 2}},
        ("PUT", "/api/v1/delivery/staff-accounts/{staff_id}"): {"send_limit": 1},
        ("POST", "/api/v1/delivery/deliveries"): {
            "contact_id": b["contact_id"],
            "step": "hijack",
            "channel": "sandbox",
            "text": "hijack",
        },
        ("POST", "/api/v1/delivery/opt-outs"): {"contact_id": b["contact_id"]},
        ("POST", "/api/v1/delivery/plan"): {"segment_id": b["segment_id"], "channel": "sandbox"},
    }
