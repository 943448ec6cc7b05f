"""Shared by tests/scoring: events in through the real ingestion, computed properties rebuilt, scores read back."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from fastapi import Depends
from sqlalchemy import select

from siyu.auth.dependencies import authenticated
from siyu.computed.service import rebuild
from siyu.contacts.models import Identity
from siyu.db import Database
from siyu.events.service import ingest
from siyu.scoring import service
from siyu.scoring.endpoints import router
from siyu.scoring.models import ContactScore

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
_ids = itertools.count()


def phone(n: int) -> str:
    return f"1380013{n:04d}"


def event(n: int, type: str, at: dt.datetime, **properties: Any) -> dict[str, Any]:
    """An event of the contact with phone(n), at `at` (an aware datetime)."""
    defaults: dict[str, Any] = {}
    if type.startswith("order."):
        defaults = {"order_id": f"o{next(_ids)}", "amount": 100}
    if type.startswith("content."):
        defaults = {"content_id": "article-1"}
    return {
        "id": f"e{next(_ids)}",
        "type": type,
        "contact": {"phone": phone(n)},
        "timestamp": at.isoformat(),
        "properties": {**defaults, **properties},
    }


def send(db: Database, workspace_id: int, events: list[dict[str, Any]]) -> None:
    """Stores the events as the API does and rebuilds the computed properties from them."""
    with db.transaction() as session:
        ingest(session, workspace_id, events, region="CN")
    with db.transaction() as session:
        rebuild(session, workspace_id)


def contact_id(db: Database, workspace_id: int, n: int) -> int:
    with db.transaction(write=False) as session:
        found = session.scalar(
            select(Identity.contact_id).where(
                Identity.workspace_id == workspace_id, Identity.type == "phone", Identity.value == f"+86{phone(n)}"
            )
        )
    assert found is not None, f"no contact with phone {phone(n)}"
    return found


def score(db: Database, workspace_id: int, now: dt.datetime, contact_ids: list[int] | None = None) -> int:
    with db.transaction() as session:
        return service.recompute(session, workspace_id, contact_ids=contact_ids, now=now)


def row(db: Database, contact: int) -> ContactScore:
    with db.transaction(write=False) as session:
        found = session.get(ContactScore, contact)
    assert found is not None, f"contact {contact} has no score row"
    return found


def reasons(db: Database, workspace_id: int, contact: int) -> dict[str, list[str]]:
    """Why, as the API and the console show it: built on read (runs store only the numbers)."""
    with db.transaction(write=False) as session:
        return service.reasons_for(session, workspace_id, contact)


def rows(db: Database, workspace_id: int) -> dict[int, tuple[Any, ...]]:
    """Every score row of the workspace, without computed_at: what two runs must agree on."""
    with db.transaction(write=False) as session:
        found = session.scalars(select(ContactScore).where(ContactScore.workspace_id == workspace_id))
        return {
            r.contact_id: (
                r.lifecycle_stage,
                r.r_score,
                r.f_score,
                r.m_score,
                r.value_tier,
                r.intention_score,
                r.intention_level,
                r.transaction_stage,
                r.reasons,
            )
            for r in found
        }


def mount_scoring(app: Any) -> None:
    """Until siyu.api mounts the scoring router: mount it as siyu.api would (a no-op once it does)."""
    if any(getattr(r, "path", None) == "/api/v1/scoring/settings" for r in app.routes):
        return
    app.include_router(router, prefix="/api/v1", dependencies=[Depends(authenticated)])
    app.openapi_schema = None
