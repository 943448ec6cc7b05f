"""Helpers for the group tests: mount the groups routers (until api.py and the console include them),
post events, and make groups and codes through the API."""

from __future__ import annotations

import itertools
from typing import Any

from fastapi import Depends

from siyu.auth.dependencies import authenticated
from siyu.groups import endpoints, links, stream

_n = itertools.count(1)


def mount(app: Any) -> None:
    paths = {getattr(r, "path", "") for r in app.routes}
    if "/api/v1/groups" not in paths:
        app.include_router(endpoints.router, prefix="/api/v1", dependencies=[Depends(authenticated)])
    if "/g/{slug}" not in paths:
        app.include_router(links.router)


def add_staff(tenant: Any, name: str) -> int:
    response = tenant.client.post(
        "/api/v1/staff", json={"email": f"g{next(_n)}@x.cn", "name": name, "role": "consultant"}
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def make_group(tenant: Any, name: str = "考试冲刺 1 群", purpose: str = "broadcast", **extra: Any) -> dict[str, Any]:
    response = tenant.client.post("/api/v1/groups", json={"name": name, "purpose": purpose, **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


def make_code(tenant: Any, group_ids: list[int], **extra: Any) -> dict[str, Any]:
    body = {"name": extra.pop("name", f"群活码{next(_n)}"), "group_ids": group_ids, **extra}
    response = tenant.client.post("/api/v1/group-codes", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def event(kind: str, who: str, at: str, **props: Any) -> dict[str, Any]:
    return {"id": f"e{next(_n)}", "type": kind, "contact": {"phone": who}, "timestamp": at, "properties": props}


def send(tenant: Any, db: Any, *events: dict[str, Any]) -> None:
    response = tenant.client.post("/api/v1/events?wait=true", json={"events": list(events)})
    assert response.status_code in (200, 201, 202), response.text
    stream.catch_up(db)


def phone(n: int) -> str:
    return f"1390013{n:04d}"
