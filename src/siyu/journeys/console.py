"""Console pages under /console/journeys: the list with numbers, the templates gallery, the builder (a steps
editor kept in step with the definition's JSON, checked as you type with errors shown on the step they
name), a journey's page with per-step numbers and the goal conversion against the holdout, and the journeys
panel on a contact's page.

The builder's form sends one thing, the definition as JSON (docs/en/journeys.md), checked by the same
parser as the API.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from siyu.auth.dependencies import get_database
from siyu.auth.scopes import Scope
from siyu.console.render import ConsoleUser, flash, gettext_for, redirect, render
from siyu.console.security import CurrentUser
from siyu.contacts.models import Contact
from siyu.delivery.models import Channel
from siyu.errors import Conflict, SiyuError
from siyu.journeys import service
from siyu.journeys.definition import Definition, DefinitionError
from siyu.journeys.models import Journey
from siyu.journeys.templates import TEMPLATES, instantiate

router = APIRouter()

READ_SCOPE = Scope.journeys_read
WRITE_SCOPE = Scope.journeys_write
LATEST = 20
EMPTY: dict[str, Any] = {
    "trigger": {"event": "contact.added"},
    "entry": {"mode": "once"},
    "steps": [{"id": "welcome", "type": "send", "channel": "sandbox", "text": "欢迎！"}],
}
SKELETONS: dict[str, dict[str, Any]] = {
    "wait": {"for": {"days": 1}, "until": "10:00"},
    "wait_event": {"event": "content.viewed", "timeout": {"days": 2}, "on_event": None, "on_timeout": None},
    "branch": {"condition": {"computed": "order_count", "op": "gte", "value": 1}, "then": None, "else": None},
    "split": {"branches": [{"weight": 1, "next": None}, {"weight": 1, "next": None}]},
    "holdout": {"percent": 10},
    "send": {"channel": "sandbox", "text": "", "welfare": False, "service": False, "quiet_hours": "hold"},
    "tag": {"add": []},
    "set_attribute": {"attribute": "", "value": ""},
    "task": {"title": "", "due_in": {"hours": 24}},
    "owner": {"staff_ids": []},
    "invite_group": {"group_code_id": 0, "channel": "sandbox", "text": "{link}", "base_url": ""},
    "webhook": {"url": "https://", "payload": {}},
    "exit": {},
}


async def form_data(request: Request) -> FormData:
    return await request.form()


Form = Annotated[FormData, Depends(form_data)]


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _can_write(user: ConsoleUser) -> bool:
    return WRITE_SCOPE in user.principal.scopes


# --- words -----------------------------------------------------------------------------------------


def _statuses(request: Request) -> dict[str, str]:
    _ = gettext_for(request)
    return {"draft": _("Draft"), "active": _("Running"), "paused": _("Paused"), "archived": _("Archived")}


def _triggers(request: Request) -> dict[str, str]:
    _ = gettext_for(request)
    return {
        "event": _("An event"),
        "segment": _("Segment entry / exit"),
        "tag": _("Tag added"),
        "date": _("A date (birthday…)"),
        "schedule": _("A schedule"),
        "manual": _("By hand"),
    }


def _step_types(request: Request) -> dict[str, str]:
    _ = gettext_for(request)
    return {
        "send": _("Send a message"),
        "wait": _("Wait"),
        "wait_event": _("Wait for an event"),
        "branch": _("Branch on a condition"),
        "split": _("Random split"),
        "holdout": _("Holdout group"),
        "tag": _("Add / remove tags"),
        "set_attribute": _("Set an attribute"),
        "task": _("Staff task"),
        "owner": _("Change owner"),
        "invite_group": _("Invite to a group"),
        "webhook": _("Call a webhook"),
        "exit": _("Exit"),
    }


def _enrolment_statuses(request: Request) -> dict[str, str]:
    _ = gettext_for(request)
    return {"active": _("In it"), "completed": _("Completed"), "exited": _("Taken out")}


def _reasons(request: Request) -> dict[str, str]:
    _ = gettext_for(request)
    return {
        "goal": _("reached the goal"),
        "exit_step": _("exit step"),
        "archived": _("journey archived"),
        "removed": _("taken out by hand"),
        "merged": _("profile merged"),
    }


def _templates(request: Request) -> list[dict[str, Any]]:
    _ = gettext_for(request)
    words = {
        "onboarding": (
            _("New-customer onboarding"),
            _(
                "Welcome, interest-matched content on day 1, a consultant task on day 3, an offer on day 7; "
                "exits on a paid order."
            ),
        ),
        "training_camp": (
            _("Training camp with a conversion day"),
            _(
                "Opening, a lesson reminder, then on conversion day an offer and a call for those who attended, "
                "the replay for the others."
            ),
        ),
        "festival": (
            _("Festival greeting"),
            _("Everyone gets a greeting at 10:00 on 1 October (change the schedule for another festival)."),
        ),
        "birthday": (
            _("Birthday greeting"),
            _("On the birthday at 10:00: a greeting with a coupon and a task for the owner."),
        ),
        "repurchase": (
            _("Post-purchase repurchase and referral"),
            _("Thanks, care after a week, then a referral ask for repeat buyers and a repurchase nudge for the rest."),
        ),
        "winback": (
            _("Win back at-risk customers"),
            _(
                "Every Monday, at-risk customers get a comeback offer, 10 in 100 held out to measure it; a call if "
                "they do not open it."
            ),
        ),
        "live_reminders": (
            _("Live stream reminders at 8:00 and 19:00"),
            _("After signing up for a live stream: a reminder at 8:00 and another at 19:00; exits when they attend."),
        ),
    }
    types = _step_types(request)
    out = []
    for key, template in TEMPLATES.items():
        name, description = words[key]
        steps = [
            f"{s.get('name') or s['id']} · {types.get(s['type'], s['type'])}" for s in template.definition["steps"]
        ]
        out.append({"key": key, "name": name, "description": description, "steps": steps})
    return out


def _channels(request: Request) -> list[tuple[str, str]]:
    _ = gettext_for(request)
    labels = {
        "sandbox": _("Sandbox (reaches nobody)"),
        "wecom": _("WeCom (1:1 through the owner)"),
        "email": _("E-mail"),
        "webhook": _("Webhook"),
    }
    return [(c.value, labels[c.value]) for c in Channel]


def _vocabulary(request: Request) -> dict[str, Any]:
    _ = gettext_for(request)
    types = _step_types(request)
    return {
        "types": [{"value": k, "label": v} for k, v in types.items()],
        "skeletons": SKELETONS,
        "text": {
            "id": _("Step id"),
            "type": _("Step type"),
            "label": _("Label (optional)"),
            "params": _("Settings of the step (JSON)"),
            "up": _("Move up"),
            "down": _("Move down"),
            "remove": _("Remove"),
        },
    }


# --- list ------------------------------------------------------------------------------------------


@router.get("/journeys")
def journeys_page(request: Request, user: CurrentUser) -> Response:
    principal = user.principal
    principal.require(READ_SCOPE)
    with get_database(request).transaction(write=False) as session:
        journeys = service.list_journeys(session, principal.workspace_id)
        counts = service.summary_counts(session, [j.id for j in journeys])
        rows = [{"journey": j, "counts": counts[j.id], "published": _is_published(session, j)} for j in journeys]
    context = {
        "rows": rows,
        "statuses": _statuses(request),
        "triggers": _triggers(request),
        "can_write": _can_write(user),
    }
    return render(request, "journeys/index.html", context, user=user)


def _is_published(session: Session, journey: Journey) -> bool:
    version = service.current_version(session, journey)
    return version is not None and version.definition == journey.draft


# --- templates -------------------------------------------------------------------------------------


@router.get("/journeys/templates")
def templates_page(request: Request, user: CurrentUser) -> Response:
    user.principal.require(READ_SCOPE)
    context = {"templates": _templates(request), "channels": _channels(request), "can_write": _can_write(user)}
    return render(request, "journeys/templates.html", context, user=user)


@router.post("/journeys/from-template")
def from_template(request: Request, user: CurrentUser, form: Form) -> Response:
    _ = gettext_for(request)
    principal = user.principal
    principal.require(WRITE_SCOPE)
    key, name = _text(form, "template"), _text(form, "name")
    try:
        channel = Channel(_text(form, "channel") or "sandbox")
    except ValueError:
        channel = Channel.sandbox
    try:
        with get_database(request).transaction() as session:
            journey = service.create_journey(
                session, principal, name=name or key, description=None, definition=instantiate(key, channel)
            )
            journey_id = journey.id
    except SiyuError as exc:
        response = redirect(request, "/console/journeys/templates")
        flash(response, exc.message, "error")
        return response
    response = redirect(request, f"/console/journeys/{journey_id}/edit")
    flash(response, _("Draft “%(name)s” made from the template: check the texts, then publish.") % {"name": name})
    return response


# --- builder ---------------------------------------------------------------------------------------


def _builder(
    request: Request,
    user: ConsoleUser,
    *,
    journey: Journey | None,
    name: str,
    description: str,
    definition_text: str,
    error: DefinitionError | None = None,
    checked: Definition | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "journeys/builder.html",
        {
            "journey": journey,
            "name": name,
            "description": description,
            "definition_text": definition_text,
            "error": error,
            "steps": len(checked.order) if checked else 0,
            "trigger": _triggers(request).get(checked.trigger.kind, "") if checked else "",
            "errors": errors or {},
            "vocab_json": orjson.dumps(_vocabulary(request)).decode(),
            "can_write": _can_write(user),
        },
        user=user,
        status_code=status_code,
    )


def _check(session: Session, workspace_id: int, raw: str) -> tuple[Any, Definition | None, DefinitionError | None]:
    try:
        definition = json.loads(raw) if raw.strip() else None
    except json.JSONDecodeError as exc:
        return None, None, DefinitionError("$", f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
    if definition is None:
        return None, None, DefinitionError("$", "write the definition, or start from a template")
    try:
        return definition, service.check(session, workspace_id, definition), None
    except DefinitionError as exc:
        return definition, None, exc


def _pretty(definition: Any) -> str:
    return json.dumps(definition, ensure_ascii=False, indent=2)


@router.get("/journeys/new")
def new_journey_page(request: Request, user: CurrentUser) -> Response:
    user.principal.require(WRITE_SCOPE)
    with get_database(request).transaction(write=False) as session:
        _raw, checked, error = _check(session, user.principal.workspace_id, _pretty(EMPTY))
    return _builder(
        request,
        user,
        journey=None,
        name="",
        description="",
        definition_text=_pretty(EMPTY),
        checked=checked,
        error=error,
    )


@router.get("/journeys/{journey_id:int}/edit")
def edit_journey_page(request: Request, user: CurrentUser, journey_id: int) -> Response:
    principal = user.principal
    principal.require(WRITE_SCOPE)
    with get_database(request).transaction(write=False) as session:
        journey = service.get_journey(session, principal.workspace_id, journey_id)
        text = _pretty(journey.draft)
        _raw, checked, error = _check(session, principal.workspace_id, text)
    return _builder(
        request,
        user,
        journey=journey,
        name=journey.name,
        description=journey.description or "",
        definition_text=text,
        checked=checked,
        error=error,
    )


@router.post("/journeys/validate")
def validate(request: Request, user: CurrentUser, form: Form) -> Response:
    """The builder's check as you type: valid, or the first problem with its JSON path."""
    principal = user.principal
    principal.require(READ_SCOPE)
    with get_database(request).transaction(write=False) as session:
        _raw, checked, error = _check(session, principal.workspace_id, _text(form, "definition"))
    context = {
        "error": error,
        "steps": len(checked.order) if checked else 0,
        "trigger": _triggers(request).get(checked.trigger.kind, "") if checked else "",
    }
    return render(request, "journeys/_check.html", context, user=user)


def _save(request: Request, user: CurrentUser, form: FormData, journey_id: int | None) -> Response:
    """Creates or updates the draft from the builder (and publishes it when asked); a refusal shows the form
    again with what was typed and why (422)."""
    _ = gettext_for(request)
    principal = user.principal
    principal.require(WRITE_SCOPE)
    name, description, text = _text(form, "name"), _text(form, "description"), _text(form, "definition")
    publish = _text(form, "action") == "publish"
    session = get_database(request).session(write=True)
    try:
        journey = service.get_journey(session, principal.workspace_id, journey_id) if journey_id else None
        definition, checked, error = _check(session, principal.workspace_id, text)
        errors: dict[str, str] = {}
        if error is not None:
            errors["definition"] = f"{error.path}: {error.reason}"
        if not name:
            errors["name"] = _("Give the journey a name.")
        if not errors:
            try:
                if journey is None:
                    journey = service.create_journey(
                        session, principal, name=name, description=description or None, definition=definition
                    )
                else:
                    service.update_journey(
                        session, principal, journey.id, name=name, description=description, definition=definition
                    )
                if publish:
                    service.publish(session, principal, journey.id)
                saved_id = journey.id
                session.commit()
            except DefinitionError as exc:
                session.rollback()
                error = exc
                errors["definition"] = f"{exc.path}: {exc.reason}"
            except Conflict as exc:
                session.rollback()
                errors["name" if "named" in exc.message else ""] = exc.message
        if errors:
            journey = service.get_journey(session, principal.workspace_id, journey_id) if journey_id else None
            return _builder(
                request,
                user,
                journey=journey,
                name=name,
                description=description,
                definition_text=text,
                error=error,
                checked=checked,
                errors=errors,
                status_code=422,
            )
    finally:
        session.close()
    response = redirect(request, f"/console/journeys/{saved_id}")
    message = _("Journey “%(name)s” published.") if publish else _("Draft of “%(name)s” saved.")
    flash(response, message % {"name": name})
    return response


@router.post("/journeys")
def create_journey(request: Request, user: CurrentUser, form: Form) -> Response:
    return _save(request, user, form, None)


@router.post("/journeys/{journey_id:int}")
def update_journey(request: Request, user: CurrentUser, journey_id: int, form: Form) -> Response:
    return _save(request, user, form, journey_id)


# --- a journey's page ------------------------------------------------------------------------------


@router.get("/journeys/{journey_id:int}")
def journey_page(request: Request, user: CurrentUser, journey_id: int) -> Response:
    principal = user.principal
    principal.require(READ_SCOPE)
    with get_database(request).transaction(write=False) as session:
        journey = service.get_journey(session, principal.workspace_id, journey_id)
        numbers = service.numbers(session, journey)
        enrolments = service.list_enrolments(
            session, principal, journey, service.EnrolmentFilter(), before=None, limit=LATEST
        )
        names = dict(
            session.execute(
                select(Contact.id, Contact.name).where(Contact.id.in_([e.contact_id for e in enrolments]))
            ).all()
        )
        version = service.current_version(session, journey)
        context = {
            "journey": journey,
            "numbers": numbers,
            "enrolments": enrolments,
            "names": names,
            "published": version is not None and version.definition == journey.draft,
            "published_text": _pretty(version.definition) if version else "",
            "statuses": _statuses(request),
            "types": _step_types(request),
            "enrolment_statuses": _enrolment_statuses(request),
            "reasons": _reasons(request),
            "can_write": _can_write(user),
        }
    return render(request, "journeys/detail.html", context, user=user)


def _act(request: Request, user: ConsoleUser, journey_id: int, action: str) -> Response:
    _ = gettext_for(request)
    principal = user.principal
    principal.require(WRITE_SCOPE)
    messages = {
        "publish": _("Published: new entries follow the new version; those already in it stay on theirs."),
        "activate": _("The journey runs."),
        "pause": _("Paused: nobody enters or moves until you resume it."),
        "archive": _("Archived: everyone still in it was taken out."),
    }
    response = redirect(request, f"/console/journeys/{journey_id}")
    try:
        with get_database(request).transaction() as session:
            if action == "publish":
                service.publish(session, principal, journey_id)
            elif action == "activate":
                service.activate(session, principal, journey_id)
            elif action == "pause":
                service.pause(session, principal, journey_id)
            else:
                service.archive(session, principal, journey_id)
    except (Conflict, DefinitionError) as exc:
        flash(response, exc.message, "error")
        return response
    flash(response, messages[action])
    return response


@router.post("/journeys/{journey_id:int}/publish")
def publish(request: Request, user: CurrentUser, journey_id: int) -> Response:
    return _act(request, user, journey_id, "publish")


@router.post("/journeys/{journey_id:int}/activate")
def activate(request: Request, user: CurrentUser, journey_id: int) -> Response:
    return _act(request, user, journey_id, "activate")


@router.post("/journeys/{journey_id:int}/pause")
def pause(request: Request, user: CurrentUser, journey_id: int) -> Response:
    return _act(request, user, journey_id, "pause")


@router.post("/journeys/{journey_id:int}/archive")
def archive(request: Request, user: CurrentUser, journey_id: int) -> Response:
    return _act(request, user, journey_id, "archive")


@router.get("/contacts/{contact_id:int}/journeys")
def contact_journeys_panel(request: Request, user: CurrentUser, contact_id: int) -> Response:
    """The contact page's journeys panel (loaded after the page): every enrolment, newest first."""
    principal = user.principal
    principal.require(READ_SCOPE)
    with get_database(request).transaction(write=False) as session:
        enrolments = service.contact_enrolments(session, principal, contact_id)
    context = {
        "enrolments": enrolments,
        "enrolment_statuses": _enrolment_statuses(request),
        "reasons": _reasons(request),
    }
    return render(request, "journeys/_contact_panel.html", context, user=user)
