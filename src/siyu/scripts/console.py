"""Console pages of the script library: the search page (results as you type, copy buttons) and the panel
shown beside a contact (`/console/scripts/panel?contact_id=`), pre-filled with the contact's last message."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from siyu.auth.dependencies import get_database
from siyu.auth.scopes import Scope
from siyu.console.render import ConsoleUser, render
from siyu.console.security import CurrentUser
from siyu.contacts.service import get_contact
from siyu.errors import validation_error
from siyu.events.models import Event
from siyu.scripts import service

router = APIRouter()

RESULTS = 8
PANEL_RESULTS = 5
MAX_QUERY = 2000


async def form_data(request: Request) -> FormData:
    return await request.form()


Form = Annotated[FormData, Depends(form_data)]


def _int(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() else None


def _query(request: Request) -> str:
    return (request.query_params.get("q") or "").strip()[:MAX_QUERY]


def last_question(session: Session, user: ConsoleUser, contact_id: int) -> str:
    """The contact's last message with text (what they just asked), else the question they first asked."""
    contact = get_contact(session, user.principal, contact_id)
    rows = session.scalars(
        select(Event.properties)
        .where(Event.contact_id == contact.id, Event.type == "message.received")
        .order_by(Event.occurred_at.desc(), Event.id.desc())
        .limit(20)
    )
    for properties in rows:
        text = properties.get("text") if isinstance(properties, dict) else None
        if isinstance(text, str) and text.strip():
            return text.strip()[:MAX_QUERY]
    return (contact.consult_question or "").strip()[:MAX_QUERY]


def _results_context(
    session: Session, user: ConsoleUser, query: str, contact_id: int | None, limit: int
) -> dict[str, Any]:
    return {
        "query": query,
        "results": service.search(session, user.principal.workspace_id, query, limit),
        "contact_id": contact_id,
    }


@router.get("/scripts")
def scripts_page(request: Request, user: CurrentUser) -> Response:
    user.principal.require(Scope.content_read)
    query = _query(request)
    with get_database(request).transaction(write=False) as session:
        context = _results_context(session, user, query, None, RESULTS)
    return render(request, "scripts/index.html", context, user=user)


@router.get("/scripts/results")
def scripts_results(request: Request, user: CurrentUser) -> Response:
    """The ranked list alone (HTMX swaps it in as the consultant types)."""
    user.principal.require(Scope.content_read)
    contact_id = _int(request.query_params.get("contact_id"))
    limit = PANEL_RESULTS if contact_id is not None else RESULTS
    with get_database(request).transaction(write=False) as session:
        if contact_id is not None:
            get_contact(session, user.principal, contact_id)
        context = _results_context(session, user, _query(request), contact_id, limit)
    return render(request, "scripts/_results.html", context, user=user)


@router.get("/scripts/panel")
def scripts_panel(request: Request, user: CurrentUser) -> Response:
    """The panel beside a contact: a search box pre-filled with the contact's last question, and results."""
    user.principal.require(Scope.content_read)
    contact_id = _int(request.query_params.get("contact_id"))
    if contact_id is None:
        raise validation_error("contact_id", "give the contact's id: /console/scripts/panel?contact_id=<id>")
    with get_database(request).transaction(write=False) as session:
        query = _query(request) or last_question(session, user, contact_id)
        context = _results_context(session, user, query, contact_id, PANEL_RESULTS)
    return render(request, "scripts/panel.html", context, user=user)


@router.post("/scripts/{script_id}/uses")
def record_use(script_id: int, request: Request, user: CurrentUser, form: Form) -> Response:
    """The copy button: records the use and answers with the script's new count of uses."""
    user.principal.require(Scope.content_read)
    answer_index = _int(form.get("answer_index")) or 0
    contact_id = _int(form.get("contact_id"))
    with get_database(request).transaction() as session:
        service.record_use(session, user.principal, script_id, answer_index=answer_index, contact_id=contact_id)
        figures = service.usage(session, user.principal.workspace_id, [script_id])[script_id]
        session.commit()
    return render(request, "scripts/_usage.html", {"usage": figures, "copied": True}, user=user)
