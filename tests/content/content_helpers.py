"""Helpers for the content tests: items, pushes and contacts made through the API.

`mount(app)` puts the content routers on the app when siyu.api does not include them yet (the lead
wires them there); once it does, it changes nothing.
"""

from __future__ import annotations

import itertools
from typing import Any

from fastapi import APIRouter, Depends

from siyu.auth.dependencies import authenticated
from siyu.content import endpoints, links

_n = itertools.count(1)
BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 MicroMessenger/8.0.50"


def mount(app: Any) -> None:
    paths = {getattr(r, "path", "") for r in app.routes}
    if "/api/v1/content" not in paths:
        api = APIRouter(prefix="/api/v1", dependencies=[Depends(authenticated)])
        api.include_router(endpoints.router)
        app.include_router(api)
    if "/r/{token}" not in paths:
        app.include_router(links.router)


def make_item(tenant: Any, **fields: Any) -> dict[str, Any]:
    mount(tenant.client.app)
    body = {
        "kind": "article",
        "title": f"考研备考指南{next(_n)}",
        "body": "# 第一步\n\n先定目标。",
        "status": "published",
        **fields,
    }
    response = tenant.client.post("/api/v1/content", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def make_contact(tenant: Any, name: str = "小王") -> int:
    response = tenant.client.post(
        "/api/v1/contacts", json={"name": name, "identities": [{"type": "phone", "value": f"1380013{next(_n):04d}"}]}
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def push(tenant: Any, content_id: int, **body: Any) -> dict[str, Any]:
    response = tenant.client.post(f"/api/v1/content/{content_id}/pushes", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def send_events(tenant: Any, events: list[dict[str, Any]]) -> None:
    response = tenant.client.post("/api/v1/events?wait=true", json={"events": events})
    assert response.status_code in (200, 201, 202), response.text


def console_client(app: Any, tenant: Any, email: str = "op@brand.cn", role: str = "operator") -> Any:
    """A staff member signed in through the console's form (cookie + CSRF)."""
    import re

    from fastapi.testclient import TestClient

    password = "correct horse battery"
    created = tenant.client.post(
        "/api/v1/staff", json={"email": email, "name": "运营", "role": role, "password": password}
    )
    assert created.status_code == 201, created.text
    client = TestClient(app, follow_redirects=False)
    page = client.get("/console/sign-in")
    token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    assert token
    data = {"email": email, "password": password, "csrf_token": token.group(1), "next": "/console/content"}
    assert client.post("/console/sign-in", data=data).status_code == 303
    return client


def csrf(client: Any, path: str = "/console/content") -> str:
    import re

    page = client.get(path)
    assert page.status_code == 200, page.text
    match = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    assert match
    return match.group(1)
