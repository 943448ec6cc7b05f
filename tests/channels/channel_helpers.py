"""Helpers for the channel tests: staff, a channel and a code made through the API."""

from __future__ import annotations

import itertools
from typing import Any

_n = itertools.count(1)


def add_staff(tenant: Any, name: str) -> int:
    response = tenant.client.post(
        "/api/v1/staff", json={"email": f"s{next(_n)}@x.cn", "name": name, "role": "consultant"}
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def make_channel(tenant: Any, name: str = "抖音直播", kind: str = "douyin", costs: list[Any] | None = None) -> int:
    response = tenant.client.post("/api/v1/channels", json={"kind": kind, "name": name, "costs": costs or []})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def make_code(tenant: Any, channel_id: int, pool: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    body = {"channel_id": channel_id, "name": extra.pop("name", f"活码{next(_n)}"), "pool": pool, **extra}
    response = tenant.client.post("/api/v1/channel-codes", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def phone(n: int) -> str:
    return f"1380013{n:04d}"
