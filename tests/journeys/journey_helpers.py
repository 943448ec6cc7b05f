"""Helpers of the journey tests: a workspace with contacts, journeys through the API, the worker's passes
run by hand on the frozen clock, and what the sandbox received."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from sqlalchemy import func, select

from siyu.db import Database
from siyu.delivery.models import Delivery, SandboxMessage
from siyu.events.models import Event
from siyu.journeys import runner, triggers
from siyu.journeys.models import JourneyEnrolment

NO_BUDGETS = {"caps": {"day": None, "week": None, "month": None}, "quiet_hours": None, "welfare_days_per_month": None}


def lift_budgets(tenant: Any) -> None:
    """Most tests are about the journey, not the budgets: no caps, no quiet hours."""
    response = tenant.client.put("/api/v1/delivery/settings", json=NO_BUDGETS)
    assert response.status_code == 200, response.text


def contact(tenant: Any, name: str, phone: str, **fields: Any) -> int:
    body = {"name": name, "identities": [{"type": "phone", "value": phone}], **fields}
    response = tenant.client.post("/api/v1/contacts", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def phone(n: int) -> str:
    return f"1390000{n:04d}"


def journey(tenant: Any, definition: dict[str, Any], name: str = "旅程", *, activate: bool = True) -> int:
    created = tenant.client.post("/api/v1/journeys", json={"name": name, "definition": definition})
    assert created.status_code == 201, created.text
    journey_id = int(created.json()["id"])
    published = tenant.client.post(f"/api/v1/journeys/{journey_id}/publish")
    assert published.status_code == 200, published.text
    if activate:
        active = tenant.client.post(f"/api/v1/journeys/{journey_id}/activate")
        assert active.status_code == 200, active.text
    return journey_id


def enrol(tenant: Any, journey_id: int, contact_ids: list[int]) -> dict[str, Any]:
    response = tenant.client.post(f"/api/v1/journeys/{journey_id}/enrolments", json={"contact_ids": contact_ids})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def events(tenant: Any, *items: dict[str, Any]) -> None:
    response = tenant.client.post("/api/v1/events?wait=true", json={"events": list(items)})
    assert response.status_code in (200, 201, 202), response.text


def event(event_id: str, kind: str, contact_id: int, **properties: Any) -> dict[str, Any]:
    return {"id": event_id, "type": kind, "contact": {"id": contact_id}, "properties": properties}


def work(db: Database) -> int:
    """What a worker does on one turn, until nothing is left: triggers, then due enrolments."""
    total = 0
    while True:
        done = triggers.poll(db)
        done += runner.run_until_idle(db)
        total += done
        if done == 0:
            return total


def fire(db: Database) -> int:
    with db.transaction() as session:
        return triggers.fire_due(session)


def enrolment(db: Database, journey_id: int, contact_id: int) -> JourneyEnrolment:
    with db.transaction(write=False) as session:
        row = session.scalars(
            select(JourneyEnrolment)
            .where(JourneyEnrolment.journey_id == journey_id, JourneyEnrolment.contact_id == contact_id)
            .order_by(JourneyEnrolment.id.desc())
        ).first()
        assert row is not None, f"contact {contact_id} never entered journey {journey_id}"
        return row


def sandbox(db: Database, journey_id: int | None = None) -> list[tuple[str, int, int, str | None]]:
    """(step, contact, enrolment, text) of every sandbox message, oldest first."""
    with db.transaction(write=False) as session:
        q = select(Delivery.step, Delivery.contact_id, Delivery.entry, SandboxMessage.text).join(
            SandboxMessage, SandboxMessage.id == Delivery.id
        )
        if journey_id is not None:
            q = q.where(Delivery.source == f"journey:{journey_id}")
        return [tuple(r) for r in session.execute(q.order_by(Delivery.id)).all()]  # type: ignore[misc]


def sandbox_per_key(db: Database, journey_id: int) -> Counter[tuple[str, int, int]]:
    with db.transaction(write=False) as session:
        rows = session.execute(
            select(Delivery.step, Delivery.contact_id, Delivery.entry, func.count())
            .join(SandboxMessage, SandboxMessage.id == Delivery.id)
            .where(Delivery.source == f"journey:{journey_id}")
            .group_by(Delivery.step, Delivery.contact_id, Delivery.entry)
        ).all()
    return Counter({(s, c, e): int(n) for s, c, e, n in rows})


def deliveries(db: Database, journey_id: int) -> list[tuple[str, int, str, str | None]]:
    """(step, contact, status, reason) of the journey's deliveries."""
    with db.transaction(write=False) as session:
        return [
            (s, int(c), st.value, r)
            for s, c, st, r in session.execute(
                select(Delivery.step, Delivery.contact_id, Delivery.status, Delivery.reason)
                .where(Delivery.source == f"journey:{journey_id}")
                .order_by(Delivery.id)
            )
        ]


def journey_events(db: Database, contact_id: int) -> list[tuple[str, dict[str, Any]]]:
    with db.transaction(write=False) as session:
        return [
            (t, p)
            for t, p in session.execute(
                select(Event.type, Event.properties)
                .where(Event.contact_id == contact_id, Event.type.like("journey.%"))
                .order_by(Event.seq)
            )
        ]


def at(clock: Any, local: str) -> dt.datetime:
    """Moves the frozen clock to a Shanghai wall time 'YYYY-MM-DD HH:MM'."""
    from zoneinfo import ZoneInfo

    moment = dt.datetime.fromisoformat(local).replace(tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(dt.UTC)
    assert moment >= clock.now, f"the clock only moves forward ({clock.now} -> {moment})"
    clock.now = moment
    return moment
