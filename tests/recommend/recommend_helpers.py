"""Helpers for the recommendation tests: a library with tags, contacts, events, and the portrait step.

`mount(app)` puts the recommendation router on the app while siyu.api does not include it yet.
`feed(db, workspace_id)` does what the pipeline hook does: the new events into the portraits.
"""

from __future__ import annotations

import itertools
from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import select
from tests.content.content_helpers import make_item
from tests.content.content_helpers import mount as mount_content

from siyu.auth.dependencies import authenticated
from siyu.computed.service import read_events
from siyu.content.models import ContentItem
from siyu.recommend import endpoints, portrait
from siyu.usermodel import pipeline

_n = itertools.count(1)
_fed: dict[int, int] = {}


def mount(app: Any) -> None:
    mount_content(app)
    paths = {getattr(r, "path", "") for r in app.routes}
    if "/api/v1/contacts/{contact_id}/recommendations" not in paths:
        api = APIRouter(prefix="/api/v1", dependencies=[Depends(authenticated)])
        api.include_router(endpoints.router)
        app.include_router(api)


def tag_group(tenant: Any, name: str, tags: list[str]) -> dict[str, int]:
    mount(tenant.client.app)
    response = tenant.client.post("/api/v1/content/tag-groups", json={"name": name})
    assert response.status_code == 201, response.text
    group_id = response.json()["id"]
    out = {}
    for tag in tags:
        created = tenant.client.post(f"/api/v1/content/tag-groups/{group_id}/tags", json={"name": tag})
        assert created.status_code == 201, created.text
        out[tag] = int(created.json()["id"])
    return out


def item(tenant: Any, title: str, tag_ids: list[int], status: str = "published") -> int:
    return int(make_item(tenant, title=title, tag_ids=tag_ids, status=status)["id"])


def phone(n: int) -> str:
    return f"1370013{n:04d}"


def contact(tenant: Any, n: int) -> int:
    response = tenant.client.post(
        "/api/v1/contacts", json={"name": f"客户{n}", "identities": [{"type": "phone", "value": phone(n)}]}
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def event(kind: str, who: int, at: str, **props: Any) -> dict[str, Any]:
    return {
        "id": f"r{next(_n)}",
        "type": kind,
        "contact": {"phone": phone(who)},
        "timestamp": at,
        "properties": props,
    }


def send(tenant: Any, *events: dict[str, Any]) -> None:
    response = tenant.client.post("/api/v1/events?wait=true", json={"events": list(events)})
    assert response.status_code in (200, 201, 202), response.text


def feed(db: Any, workspace_id: int) -> set[int]:
    """Runs the real pipeline over the new events; returns the contacts whose content events it read."""
    with db.transaction(write=False) as session:
        events = read_events(session, workspace_id, after_seq=_fed.get(workspace_id, 0))
    pipeline.catch_up(db)
    if events:
        _fed[workspace_id] = events[-1].seq
    with db.transaction(write=False) as session:
        known = {
            str(i) for i in session.scalars(select(ContentItem.id).where(ContentItem.workspace_id == workspace_id))
        }
    return {
        e.contact_id
        for e in events
        if e.type in portrait_event_types(db, workspace_id) and str(e.properties.get("content_id")) in known
    }


def reset_feed() -> None:
    _fed.clear()


def portrait_event_types(db: Any, workspace_id: int) -> set[str]:
    with db.transaction(write=False) as session:
        config = portrait.load_config(session, workspace_id)
        return set(config.weights) | set(config.seen_events)
