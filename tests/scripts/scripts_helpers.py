"""Helpers of the script-library tests: mount the API router (until siyu.api includes it), put scripts in
a workspace directly, post events, find a contact by phone."""

from __future__ import annotations

import itertools
from typing import Any

from fastapi import Depends
from sqlalchemy import select

from siyu.auth.dependencies import authenticated
from siyu.contacts.models import Identity
from siyu.content.models import ContentItem, ContentKind, ContentStatus
from siyu.db import Database
from siyu.scripts import endpoints
from siyu.scripts.evaluation import library

_n = itertools.count(1)


def mount(app: Any) -> None:
    paths = {getattr(r, "path", "") for r in app.routes}
    if "/api/v1/scripts/search" not in paths:
        app.include_router(endpoints.router, prefix="/api/v1", dependencies=[Depends(authenticated)])


def add_script(
    db: Database,
    workspace_id: int,
    title: str,
    question: str,
    answers: list[str],
    status: ContentStatus = ContentStatus.published,
) -> int:
    with db.transaction() as session:
        item = ContentItem(
            workspace_id=workspace_id,
            kind=ContentKind.script,
            title=title,
            data={"question": question, "answers": answers},
            status=status,
        )
        session.add(item)
        session.flush()
        return item.id


def add_library(db: Database, workspace_id: int) -> dict[str, int]:
    """The whole labelled library (src/siyu/scripts/data/library.json), published: key -> id."""
    return {s["key"]: add_script(db, workspace_id, s["title"], s["question"], s["answers"]) for s in library()}


def set_status(db: Database, script_id: int, status: ContentStatus) -> None:
    with db.transaction() as session:
        item = session.get(ContentItem, script_id)
        assert item is not None
        item.status = status
        item.version += 1


def event(kind: str, phone: str, at: str, **props: Any) -> dict[str, Any]:
    return {"id": f"s{next(_n)}", "type": kind, "contact": {"phone": phone}, "timestamp": at, "properties": props}


def send(tenant: Any, *events: dict[str, Any]) -> None:
    response = tenant.client.post("/api/v1/events?wait=true", json={"events": list(events)})
    assert response.status_code in (200, 201, 202), response.text


def contact_of(db: Database, workspace_id: int, phone: str) -> int:
    with db.transaction(write=False) as session:
        contact_id = session.scalar(
            select(Identity.contact_id).where(
                Identity.workspace_id == workspace_id, Identity.type == "phone", Identity.value.like(f"%{phone}")
            )
        )
    assert contact_id is not None, phone
    return int(contact_id)
