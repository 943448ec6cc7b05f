"""Every route is authenticated unless listed public, and no key of workspace A reads or changes B.

The test walks the OpenAPI description, so a new route is covered the day it is added: it must get a
request body below (REQUEST_BODIES) or the walk fails and says so.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from siyu.db import Base
from siyu.jobs import enqueue

PUBLIC = {("POST", "/api/v1/auth/sessions"), ("GET", "/health")}
MARK = "ZZB"  # every name in workspace B carries it; it must never show up in A's answers


def _routes(app) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    routes = []
    for path, item in app.openapi()["paths"].items():
        for method in item:
            if method.upper() in {"GET", "POST", "PATCH", "PUT", "DELETE"}:
                routes.append((method.upper(), path))
    return sorted(routes)


def _seed_b(b, db) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    c = b.client
    with db.transaction() as session:
        job = enqueue(session, "jobs.cleanup", {"note": MARK}, workspace_id=b.workspace_id)
        assert job is not None
        job_id = job.id
    staff_id, _ = b.as_staff(f"{MARK.lower()}@b.cn", name=f"{MARK}顾问")
    group = c.post("/api/v1/tag-groups", json={"name": f"{MARK}组"}).json()
    tag = c.post("/api/v1/tags", json={"group_id": group["id"], "name": f"{MARK}标签"}).json()
    c.post("/api/v1/attributes", json={"key": "zzb_attr", "label": f"{MARK}属性", "type": "text"})
    contact = c.post(
        "/api/v1/contacts",
        json={"name": f"{MARK}客户", "owner_id": staff_id, "identities": [{"type": "phone", "value": "13600136000"}]},
    ).json()
    other = c.post("/api/v1/contacts", json={"name": f"{MARK}另一个"}).json()
    c.post(f"/api/v1/contacts/{contact['id']}/tags", json={"add": [tag["id"]]})
    c.post(f"/api/v1/contacts/{contact['id']}/notes", json={"body": f"{MARK}备注"})
    c.post(
        "/api/v1/events",
        json={
            "events": [
                {
                    "id": "b1",
                    "type": "content.viewed",
                    "contact": {"phone": "13600136000"},
                    "properties": {"content_id": MARK},
                }
            ]
        },
    )
    key = c.post("/api/v1/api-keys", json={"name": f"{MARK}key"}).json()
    return {
        "contact_id": contact["id"],
        "other_contact_id": other["id"],
        "group_id": group["id"],
        "tag_id": tag["id"],
        "staff_id": staff_id,
        "key_id": key["id"],
        "job_id": job_id,
        "identity_type": "phone",
        "value": "+8613600136000",
    }


def REQUEST_BODIES(b: dict[str, Any]) -> dict[tuple[str, str], Any]:
    return {
        ("POST", "/api/v1/auth/sessions"): {"email": f"{MARK.lower()}@b.cn", "password": "wrong password"},
        ("POST", "/api/v1/staff"): {"email": "new@a.cn", "name": "n", "role": "operator", "password": "12345678"},
        ("PATCH", "/api/v1/staff/{staff_id}"): {"name": "hijacked", "is_active": False},
        ("POST", "/api/v1/api-keys"): {"name": "k"},
        ("POST", "/api/v1/contacts"): {"name": "a", "owner_id": b["staff_id"]},
        ("PATCH", "/api/v1/contacts/{contact_id}"): {"name": "hijacked"},
        ("POST", "/api/v1/contacts/{contact_id}/identities"): {"type": "email", "value": "hijack@a.cn"},
        ("POST", "/api/v1/contacts/{contact_id}/merge"): {"other_contact_id": b["other_contact_id"]},
        ("POST", "/api/v1/contacts/{contact_id}/notes"): {"body": "hijacked"},
        ("POST", "/api/v1/contacts/{contact_id}/tags"): {"add": [b["tag_id"]]},
        ("POST", "/api/v1/contacts/bulk/tags"): {"add": [b["tag_id"]], "selection": {"contact_ids": [b["contact_id"]]}},
        ("POST", "/api/v1/attributes"): {"key": "zzb_attr", "label": "x", "type": "number"},
        ("POST", "/api/v1/tag-groups"): {"name": "A组"},
        ("PATCH", "/api/v1/tag-groups/{group_id}"): {"name": "hijacked"},
        ("POST", "/api/v1/tags"): {"group_id": b["group_id"], "name": "x"},
        ("PATCH", "/api/v1/tags/{tag_id}"): {"name": "hijacked"},
        ("POST", "/api/v1/events"): {
            "events": [
                {
                    "id": "b1",
                    "type": "content.viewed",
                    "contact": {"id": b["contact_id"]},
                    "properties": {"content_id": "x"},
                }
            ]
        },
    }


# Routes without B's ids in the path whose bodies above name B's objects: they must refuse.
REFERENCES_B = {
    ("POST", "/api/v1/contacts"),
    ("POST", "/api/v1/contacts/bulk/tags"),
    ("POST", "/api/v1/tags"),
    ("POST", "/api/v1/events"),
}


def _snapshot(db, workspace_id: int) -> dict[str, list[tuple[Any, ...]]]:  # type: ignore[no-untyped-def]
    out = {}
    with db.transaction(write=False) as session:
        for table in Base.metadata.sorted_tables:
            if "workspace_id" in table.c:
                rows = session.execute(select(table).where(table.c.workspace_id == workspace_id)).all()
                out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


def test_every_route_but_the_public_ones_needs_a_credential(app, anonymous) -> None:
    routes = _routes(app)
    assert len(routes) > 20
    for method, path in routes:
        if (method, path) in PUBLIC or not path.startswith("/api/"):
            continue
        url = re.sub(r"\{[^}]+\}", "1", path)
        response = anonymous.request(method, url, json={})
        assert response.status_code == 401, f"{method} {path} answered {response.status_code} without a credential"
        assert response.json()["error"]["code"] == "not_authenticated"
    bad = anonymous.get("/api/v1/contacts", headers={"Authorization": "Bearer siyu_key_forged"})
    assert bad.status_code == 401


def test_a_key_of_workspace_a_reads_and_changes_nothing_of_b(app, make_tenant, db) -> None:
    a, b = make_tenant("A"), make_tenant(f"{MARK}品牌")
    ids = _seed_b(b, db)
    a.client.post("/api/v1/contacts", json={"name": "A的客户"})
    before = _snapshot(db, b.workspace_id)
    bodies = REQUEST_BODIES(ids)
    for method, path in _routes(app):
        if not path.startswith("/api/"):
            continue
        params = re.findall(r"\{([^}]+)\}", path)
        url = path
        for name in params:
            url = url.replace("{" + name + "}", str(ids[name]))
        needs_body = (
            method in {"POST", "PATCH", "PUT"} and "requestBody" in app.openapi()["paths"][path][method.lower()]
        )
        if needs_body and (method, path) not in bodies:
            pytest.fail(f"{method} {path} has no request body in REQUEST_BODIES: add one so isolation is tested")
        response = a.client.request(method, url, json=bodies.get((method, path)))
        text = response.text
        assert MARK not in text, f"{method} {url} leaked workspace B data: {text[:300]}"
        if params:
            assert response.status_code in (404, 422), f"{method} {url} answered {response.status_code}: {text[:300]}"
        if (method, path) in REFERENCES_B:
            assert response.status_code in (404, 422), (
                f"{method} {url} took B's ids: {response.status_code} {text[:300]}"
            )
    after = _snapshot(db, b.workspace_id)
    for table, rows in before.items():
        assert after[table] == rows, f"workspace B's {table} rows changed through workspace A's key"
