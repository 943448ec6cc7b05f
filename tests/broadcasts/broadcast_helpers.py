"""Helpers of the broadcast tests: contacts, tags and segments through the API, and the worker's poller."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy import func, select

from siyu.broadcasts import tasks
from siyu.db import Database
from siyu.delivery.models import SandboxMessage

_n = itertools.count(1)


def tag(tenant: Any, name: str = "考研") -> int:
    group = tenant.client.post("/api/v1/tag-groups", json={"name": f"组{next(_n)}"})
    assert group.status_code == 201, group.text
    made = tenant.client.post("/api/v1/tags", json={"group_id": group.json()["id"], "name": name})
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def contact(tenant: Any, name: str, *, tags: list[int] = (), **fields: Any) -> int:  # type: ignore[assignment]
    made = tenant.client.post("/api/v1/contacts", json={"name": name, **fields})
    assert made.status_code == 201, made.text
    contact_id = int(made.json()["id"])
    if tags:
        tagged = tenant.client.post(f"/api/v1/contacts/{contact_id}/tags", json={"add": list(tags)})
        assert tagged.status_code == 200, tagged.text
    return contact_id


def segment(tenant: Any, tag_id: int, name: str | None = None) -> int:
    made = tenant.client.post(
        "/api/v1/segments", json={"name": name or f"分群{next(_n)}", "rule": {"tags": [tag_id], "match": "any"}}
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def published(tenant: Any, title: str = "双十一福利") -> int:
    made = tenant.client.post(
        "/api/v1/content", json={"kind": "article", "title": title, "body": "全场五折", "status": "published"}
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def work(db: Database, *, size: int = 1000) -> int:
    """Runs the broadcasts poller until it has nothing left to do."""
    total = 0
    while True:
        done = tasks.send_due(db, budget_seconds=60, size=size)
        total += done
        if not done:
            return total


def sandbox_counts(db: Database, workspace_id: int) -> dict[int, int]:
    """contact id -> sandbox messages they got."""
    with db.transaction(write=False) as session:
        rows = session.execute(
            select(SandboxMessage.contact_id, func.count())
            .where(SandboxMessage.workspace_id == workspace_id)
            .group_by(SandboxMessage.contact_id)
        ).all()
    return {int(c): int(n) for c, n in rows}
