"""Console pages under /console/broadcasts: the list with status and progress, the compose page with a
live audience-after-budgets preview (HTMX) and a schedule, and a broadcast's page with its progress,
who was left out and why, and (WeCom) which staff members have not confirmed yet."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import pydantic
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from siyu.auth.dependencies import get_database
from siyu.auth.scopes import Scope
from siyu.broadcasts import service, wecom
from siyu.broadcasts.models import Broadcast, BroadcastStatus, WeComTaskStatus
from siyu.broadcasts.schemas import BroadcastCreate, BroadcastPreviewIn, PlanRead
from siyu.console.dashboard import zone
from siyu.console.render import ConsoleUser, flash, gettext_for, redirect, render
from siyu.console.security import CurrentUser
from siyu.content.models import ContentItem, ContentStatus
from siyu.delivery.console import channel_labels, reason_labels
from siyu.errors import Conflict, NotFound, ValidationFailed
from siyu.groups.models import ChatGroup, GroupStatus
from siyu.kit.time import utcnow
from siyu.segments.models import Segment
from siyu.tags.models import Tag, TagGroup
from siyu.wecom.service import is_configured as wecom_configured

router = APIRouter()

Errors = dict[str, str]
LIST_LIMIT = 200


async def form_data(request: Request) -> FormData:
    return await request.form()


Form = Annotated[FormData, Depends(form_data)]


def _can_write(user: ConsoleUser) -> bool:
    return Scope.broadcasts_write in user.principal.scopes


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _ids(form: FormData, name: str) -> list[str]:
    return [v for v in form.getlist(name) if isinstance(v, str) and v.strip()]


def labels(request: Request) -> dict[str, dict[str, str]]:
    _ = gettext_for(request)
    return {
        "status": {
            BroadcastStatus.scheduled.value: _("Waiting for its time"),
            BroadcastStatus.sending.value: _("Sending now"),
            BroadcastStatus.sent.value: _("All handed out"),
            BroadcastStatus.cancelled.value: _("Stopped by an operator"),
            BroadcastStatus.failed.value: _("Could not start"),
        },
        "reason": {
            **reason_labels(request),
            service.GROUP_NOT_IN_WECOM: _("Group not created in WeCom yet"),
            service.OWNER_NOT_IN_WECOM: _("Group owner has no WeCom account"),
        },
        "channel": channel_labels(request),
        "task": {
            WeComTaskStatus.pending.value: _("To be handed to WeCom"),
            WeComTaskStatus.creating.value: _("Being handed to WeCom"),
            WeComTaskStatus.created.value: _("Waiting for the staff member"),
            WeComTaskStatus.confirmed.value: _("Confirmed and sent"),
            WeComTaskStatus.failed.value: _("WeCom refused it"),
            WeComTaskStatus.unknown.value: _("Unknown whether WeCom got it"),
            WeComTaskStatus.cancelled.value: _("Stopped before WeCom got it"),
        },
        "audience": {
            "segment": _("Segment"),
            "tags": _("Tags"),
            "groups": _("Groups"),
        },
    }


def _errors(exc: Exception) -> Errors:
    if isinstance(exc, pydantic.ValidationError):
        out: Errors = {}
        for e in exc.errors():
            field = ".".join(str(p) for p in e["loc"])
            out.setdefault(field, str(e["msg"]).removeprefix("Value error, "))
        return out
    if isinstance(exc, ValidationFailed) and exc.details:
        return {str(d.get("field", "")): str(d.get("reason", exc.message)) for d in exc.details}
    if isinstance(exc, ValidationFailed | Conflict | NotFound):
        return {"": exc.message}
    raise exc


# --- compose ---------------------------------------------------------------------------------------


def _state(form: FormData | None) -> dict[str, Any]:
    if form is None:
        return {
            "name": "",
            "kind": "segment",
            "segment_id": "",
            "tag_ids": [],
            "match": "any",
            "group_ids": [],
            "content_id": "",
            "text": "",
            "channel": "sandbox",
            "welfare": False,
            "quiet_hours": "hold",
            "when": "now",
            "run_at": "",
        }
    return {
        "name": _text(form, "name"),
        "kind": _text(form, "kind") or "segment",
        "segment_id": _text(form, "segment_id"),
        "tag_ids": _ids(form, "tag_ids"),
        "match": _text(form, "match") or "any",
        "group_ids": _ids(form, "group_ids"),
        "content_id": _text(form, "content_id"),
        "text": _text(form, "text"),
        "channel": _text(form, "channel") or "sandbox",
        "welfare": bool(_text(form, "welfare")),
        "quiet_hours": _text(form, "quiet_hours") or "hold",
        "when": _text(form, "when") or "now",
        "run_at": _text(form, "run_at"),
    }


def _body(state: dict[str, Any], user: ConsoleUser) -> dict[str, Any]:
    """The API's request body from the compose form; a local time is in the workspace's zone."""
    audience: dict[str, Any] = {}
    if state["kind"] == "segment":
        audience["segment_id"] = state["segment_id"] or None
    elif state["kind"] == "tags":
        audience.update(tag_ids=state["tag_ids"] or None, match=state["match"])
    else:
        audience["group_ids"] = state["group_ids"] or None
    run_at: Any = None
    if state["when"] == "later":
        try:
            local = dt.datetime.fromisoformat(state["run_at"])
        except ValueError:
            run_at = state["run_at"] or "missing"  # pydantic names the field and says why
        else:
            run_at = (local if local.tzinfo else local.replace(tzinfo=zone(user))).isoformat()
    return {
        "name": state["name"],
        "audience": audience,
        "content_id": state["content_id"] or None,
        "text": state["text"] or None,
        "channel": state["channel"],
        "welfare": state["welfare"],
        "quiet_hours": state["quiet_hours"],
        "run_at": run_at,
    }


def _choices(session: Session, workspace_id: int) -> dict[str, Any]:
    tags = session.execute(
        select(Tag.id, Tag.name, TagGroup.name)
        .join(TagGroup, TagGroup.id == Tag.group_id)
        .where(Tag.workspace_id == workspace_id)
        .order_by(TagGroup.name, Tag.name)
    ).all()
    return {
        "segments": list(
            session.scalars(select(Segment).where(Segment.workspace_id == workspace_id).order_by(Segment.name))
        ),
        "tags": [{"id": i, "name": n, "group": g} for i, n, g in tags],
        "groups": list(
            session.scalars(
                select(ChatGroup)
                .where(
                    ChatGroup.workspace_id == workspace_id,
                    ChatGroup.status.in_([GroupStatus.active, GroupStatus.pending]),
                )
                .order_by(ChatGroup.name)
            )
        ),
        "contents": list(
            session.scalars(
                select(ContentItem)
                .where(ContentItem.workspace_id == workspace_id, ContentItem.status == ContentStatus.published)
                .order_by(ContentItem.updated_at.desc())
                .limit(200)
            )
        ),
        "wecom_ready": wecom_configured(session, workspace_id),
    }


def _compose(
    request: Request,
    user: ConsoleUser,
    session: Session,
    state: dict[str, Any],
    errors: Errors | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "state": state,
        "errors": errors or {},
        "labels": labels(request),
        # the schedule's suggestion: the next full hour, workspace time
        "suggested_run_at": (utcnow().astimezone(zone(user)) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:00"),
        "zone": str(zone(user)),
        **_choices(session, user.principal.workspace_id),
    }
    return render(request, "broadcasts/compose.html", context, user=user, status_code=status_code)


@router.get("/broadcasts/new")
def compose_page(request: Request, user: CurrentUser) -> Response:
    user.principal.require(Scope.broadcasts_write)
    with get_database(request).transaction(write=False) as session:
        return _compose(request, user, session, _state(None))


@router.post("/broadcasts/preview")
def preview(request: Request, user: CurrentUser, form: Form) -> Response:
    """The compose page's live audience after budgets (nothing is saved)."""
    user.principal.require(Scope.broadcasts_read)
    state = _state(form)
    plan: PlanRead | None = None
    errors: Errors = {}
    with get_database(request).transaction(write=False) as session:
        try:
            body = _body(state, user)
            body.pop("name")
            plan = service.preview(session, user.principal, BroadcastPreviewIn.model_validate(body))
        except (pydantic.ValidationError, ValidationFailed) as exc:
            errors = _errors(exc)
    return render(
        request, "broadcasts/_plan.html", {"plan": plan, "errors": errors, "labels": labels(request)}, user=user
    )


@router.post("/broadcasts")
def create(request: Request, user: CurrentUser, form: Form) -> Response:
    _ = gettext_for(request)
    user.principal.require(Scope.broadcasts_write)
    state = _state(form)
    with get_database(request).transaction() as session:
        try:
            data = BroadcastCreate.model_validate(_body(state, user))
            broadcast = service.create(session, user.principal, data)
            broadcast_id, status = broadcast.id, broadcast.status
            session.commit()
        except (pydantic.ValidationError, ValidationFailed, Conflict) as exc:
            session.rollback()
            return _compose(request, user, session, state, _errors(exc), status_code=422)
    response = redirect(request, f"/console/broadcasts/{broadcast_id}")
    if status is BroadcastStatus.scheduled:
        flash(response, _("Broadcast scheduled."))
    else:
        flash(response, _("Broadcast started: the audience is frozen."))
    return response


# --- list and page ---------------------------------------------------------------------------------


@router.get("/broadcasts")
def list_page(request: Request, user: CurrentUser) -> Response:
    user.principal.require(Scope.broadcasts_read)
    with get_database(request).transaction(write=False) as session:
        rows = service.broadcasts_read(
            session, service.list_broadcasts(session, user.principal.workspace_id, limit=LIST_LIMIT)
        )
        names = _audience_names(session, user.principal.workspace_id)
    context = {"rows": rows, "names": names, "labels": labels(request), "can_write": _can_write(user)}
    return render(request, "broadcasts/index.html", context, user=user)


def _audience_names(session: Session, workspace_id: int) -> dict[str, dict[int, str]]:
    return {
        "segment": dict(
            session.execute(select(Segment.id, Segment.name).where(Segment.workspace_id == workspace_id)).all()
        ),
        "tag": dict(session.execute(select(Tag.id, Tag.name).where(Tag.workspace_id == workspace_id)).all()),
        "group": dict(
            session.execute(select(ChatGroup.id, ChatGroup.name).where(ChatGroup.workspace_id == workspace_id)).all()
        ),
    }


def _page_context(session: Session, request: Request, user: ConsoleUser, broadcast: Broadcast) -> dict[str, Any]:
    (read,) = service.broadcasts_read(session, [broadcast])
    staff = service.staff_tasks_read(session, broadcast) if broadcast.channel == "wecom" else []
    content = session.get(ContentItem, broadcast.content_id) if broadcast.content_id else None
    return {
        "b": read,
        "staff": staff,
        "waiting": [s for s in staff if s.status is WeComTaskStatus.created],
        "content": content,
        "names": _audience_names(session, user.principal.workspace_id),
        "labels": labels(request),
        "can_write": _can_write(user),
        "group_message": service.is_group_message(broadcast),
    }


@router.get("/broadcasts/{broadcast_id:int}")
def broadcast_page(request: Request, user: CurrentUser, broadcast_id: int) -> Response:
    user.principal.require(Scope.broadcasts_read)
    with get_database(request).transaction(write=False) as session:
        broadcast = service.get_broadcast(session, user.principal.workspace_id, broadcast_id)
        context = _page_context(session, request, user, broadcast)
    return render(request, "broadcasts/broadcast.html", context, user=user)


@router.get("/broadcasts/{broadcast_id:int}/progress")
def progress(request: Request, user: CurrentUser, broadcast_id: int) -> Response:
    """The progress card alone, polled by the page while the broadcast sends."""
    user.principal.require(Scope.broadcasts_read)
    with get_database(request).transaction(write=False) as session:
        broadcast = service.get_broadcast(session, user.principal.workspace_id, broadcast_id)
        context = _page_context(session, request, user, broadcast)
    return render(request, "broadcasts/_progress.html", context, user=user)


def _action(request: Request, user: ConsoleUser, broadcast_id: int, what: str, staff_id: int | None = None) -> Response:
    _ = gettext_for(request)
    user.principal.require(Scope.broadcasts_write)
    ws = user.principal.workspace_id
    with get_database(request).transaction() as session:
        try:
            if what == "start":
                service.start_now(session, ws, broadcast_id)
                message = _("Broadcast started: the audience is frozen.")
            elif what == "cancel":
                service.cancel(session, ws, broadcast_id)
                message = _("Broadcast stopped. What was sent stays sent.")
            elif what == "refresh":
                service.get_broadcast(session, ws, broadcast_id)
                wecom.recheck(session, ws, broadcast_id)
                message = _("The confirmations are read again from WeCom within a minute.")
            else:
                assert staff_id is not None
                wecom.remind(session, ws, broadcast_id, staff_id)
                message = _("Reminder added to the staff member's tasks.")
            session.commit()
            kind = "ok"
        except (Conflict, NotFound) as exc:
            session.rollback()
            message, kind = exc.message, "error"
    response = redirect(request, f"/console/broadcasts/{broadcast_id}")
    flash(response, message, kind)
    return response


@router.post("/broadcasts/{broadcast_id:int}/start")
def start(request: Request, user: CurrentUser, broadcast_id: int) -> Response:
    return _action(request, user, broadcast_id, "start")


@router.post("/broadcasts/{broadcast_id:int}/cancel")
def cancel(request: Request, user: CurrentUser, broadcast_id: int) -> Response:
    return _action(request, user, broadcast_id, "cancel")


@router.post("/broadcasts/{broadcast_id:int}/refresh")
def refresh(request: Request, user: CurrentUser, broadcast_id: int) -> Response:
    return _action(request, user, broadcast_id, "refresh")


@router.post("/broadcasts/{broadcast_id:int}/staff/{staff_id:int}/remind")
def remind(request: Request, user: CurrentUser, broadcast_id: int, staff_id: int) -> Response:
    return _action(request, user, broadcast_id, "remind", staff_id)
