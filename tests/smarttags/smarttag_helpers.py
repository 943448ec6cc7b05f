"""Helpers for the smart-tag tests: the router mounted, tags, contacts and messages made simply."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from fastapi import Depends
from fastapi.testclient import TestClient

from siyu.auth.dependencies import authenticated
from siyu.computed.service import StreamEvent
from siyu.smarttags.endpoints import router

_seq = itertools.count(1)
NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)


def mounted(client: TestClient) -> TestClient:
    """The client, with /api/v1/smart-tags on its app until siyu.api mounts it there."""
    app: Any = client.app
    if "/api/v1/smart-tags" not in app.openapi()["paths"]:
        app.include_router(router, prefix="/api/v1", dependencies=[Depends(authenticated)])
        app.openapi_schema = None
    return client


def make_tag(client: TestClient, name: str, group: str = "智能标签", *, exclusive: bool = False) -> int:
    groups = {g["name"]: g["id"] for g in client.get("/api/v1/tag-groups").json()}
    group_id = groups.get(group)
    if group_id is None:
        created = client.post("/api/v1/tag-groups", json={"name": group, "exclusive": exclusive})
        assert created.status_code == 201, created.text
        group_id = created.json()["id"]
    tag = client.post("/api/v1/tags", json={"group_id": group_id, "name": name})
    assert tag.status_code == 201, tag.text
    return int(tag.json()["id"])


def make_contact(client: TestClient, **fields: Any) -> int:
    response = client.post("/api/v1/contacts", json={"name": f"客户{next(_seq)}", **fields})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def make_smart_tag(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/smart-tags", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def message(contact_id: int, text: Any, *, kind: str = "message.received") -> StreamEvent:
    return StreamEvent(next(_seq), kind, contact_id, NOW, {"text": text})


def tag_names(client: TestClient, contact_id: int) -> set[str]:
    contact = client.get(f"/api/v1/contacts/{contact_id}").json()
    return {t["name"] for t in contact["tags"]}


def history(client: TestClient, contact_id: int) -> list[tuple[str, str, str, str | None]]:
    """(tag, action, source, reason), oldest first."""
    rows = client.get(f"/api/v1/contacts/{contact_id}/tag-history").json()
    return [(h["tag_name"], h["action"], h["source"], h["reason"]) for h in reversed(rows)]
