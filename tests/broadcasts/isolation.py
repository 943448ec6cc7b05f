"""Workspace isolation, broadcasts' part (see tests/test_security.py): B's broadcast, and bodies naming B's
segment, which A's key must neither read, start, cancel, remind about, nor broadcast to."""

from __future__ import annotations

import datetime as dt
from typing import Any

from siyu.kit.time import utcnow

MARK = "ZZB"


def seed_b(client: Any, db: Any, ids: dict[str, Any]) -> dict[str, Any]:
    run_at = (utcnow() + dt.timedelta(days=1)).isoformat()
    made = client.post(
        "/api/v1/broadcasts",
        json={
            "name": f"{MARK}群发",
            "audience": {"segment_id": ids["segment_id"]},
            "text": f"{MARK}福利",
            "channel": "sandbox",
            "run_at": run_at,
        },
    )
    assert made.status_code == 201, made.text
    return {"broadcast_id": made.json()["id"]}


def _body(b: dict[str, Any]) -> dict[str, Any]:
    return {"name": "A群发", "audience": {"segment_id": b["segment_id"]}, "text": "hi", "channel": "sandbox"}


def request_bodies(b: dict[str, Any]) -> dict[tuple[str, str], Any]:
    return {
        ("POST", "/api/v1/broadcasts"): _body(b),
        ("POST", "/api/v1/broadcasts/preview"): _body(b),
    }


REFERENCES_B = {("POST", "/api/v1/broadcasts"), ("POST", "/api/v1/broadcasts/preview")}
