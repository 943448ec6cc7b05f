"""Staff tasks' part of tests/test_security.py: B's task (with history) and settings; A's key must
neither read nor change them."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

MARK = "ZZB"


def seed_b(client: TestClient, db: Any, ids: dict[str, Any]) -> dict[str, Any]:
    task = client.post(
        "/api/v1/tasks",
        json={
            "title": f"{MARK}待办",
            "detail": f"{MARK}说明",
            "staff_id": ids["staff_id"],
            "contact_id": ids["contact_id"],
        },
    )
    assert task.status_code == 201, task.text
    settings = client.put("/api/v1/tasks/settings", json={"sla_minutes": 45, "follow_up_segment_id": ids["segment_id"]})
    assert settings.status_code == 200, settings.text
    return {"task_id": task.json()["id"]}


def request_bodies(b: dict[str, Any]) -> dict[tuple[str, str], Any]:
    return {
        ("POST", "/api/v1/tasks"): {"title": "hijack", "staff_id": b["staff_id"], "contact_id": b["contact_id"]},
        ("PUT", "/api/v1/tasks/settings"): {"follow_up_segment_id": b["segment_id"]},
        ("POST", "/api/v1/tasks/{task_id}/complete"): {"note": "hijacked"},
        ("POST", "/api/v1/tasks/{task_id}/snooze"): {"until": "2099-01-01T00:00:00Z"},
        ("POST", "/api/v1/tasks/{task_id}/hand-over"): {"to_staff_id": b["staff_id"], "change_owner": True},
    }


# Without B's ids in the path, these name B's staff, contact or segment in the body: they must refuse.
REFERENCES_B = {("POST", "/api/v1/tasks"), ("PUT", "/api/v1/tasks/settings")}
