"""Helpers for the staff-task tests: staff, contacts and events through the API; the stream and the
generators run by hand (the clock fixture moves time, nothing sleeps)."""

from __future__ import annotations

import itertools
from typing import Any

from fastapi.testclient import TestClient

from siyu.kit.time import utcnow
from siyu.staff.models import Role
from siyu.stafftasks import generators, stream
from siyu.usermodel import pipeline

_n = itertools.count(1)


def add_staff(tenant: Any, name: str, *, role: str = "consultant", lead_id: int | None = None) -> int:
    body: dict[str, Any] = {"email": f"t{next(_n)}@x.cn", "name": name, "role": role}
    if lead_id is not None:
        body["lead_id"] = lead_id
    response = tenant.client.post("/api/v1/staff", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def signed_in(
    tenant: Any, name: str, *, role: Role = Role.consultant, lead_id: int | None = None
) -> tuple[int, TestClient]:
    staff_id, client = tenant.as_staff(f"s{next(_n)}@x.cn", role, name)
    if lead_id is not None:
        assert tenant.client.patch(f"/api/v1/staff/{staff_id}", json={"lead_id": lead_id}).status_code == 200
    return staff_id, client


def add_contact(tenant: Any, name: str, owner_id: int | None = None, **fields: Any) -> int:
    phone = f"1390014{next(_n):04d}"
    body = {"name": name, "owner_id": owner_id, "identities": [{"type": "phone", "value": phone}], **fields}
    response = tenant.client.post("/api/v1/contacts", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def event(kind: str, contact_id: int, at: str | None = None, **props: Any) -> dict[str, Any]:
    return {
        "id": f"ev{next(_n)}",
        "type": kind,
        "contact": {"id": contact_id},
        "timestamp": at or utcnow().isoformat(),
        "properties": props,
    }


def send(tenant: Any, db: Any, *events: dict[str, Any]) -> None:
    if events:
        response = tenant.client.post("/api/v1/events", json={"events": list(events)})
        assert response.status_code in (200, 201, 202), response.text
    pipeline.catch_up(db)
    stream.catch_up(db)


def run_daily(db: Any, workspace_id: int) -> generators.DailyResult:
    with db.transaction() as session:
        return generators.run_daily(session, workspace_id, now=utcnow())


def run_escalation(db: Any, workspace_id: int) -> tuple[int, int]:
    with db.transaction() as session:
        return generators.run_escalation(session, workspace_id, now=utcnow())


def tasks(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v1/tasks", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def inbox(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/tasks/inbox", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def manual(client: TestClient, title: str = "回访", **fields: Any) -> dict[str, Any]:
    response = client.post("/api/v1/tasks", json={"title": title, **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())
