"""Console pages for channels and channel codes (渠道活码): lists with their numbers, create/edit forms,
pause/resume, and a code's page (QR, public link, scans and adds over a date range)."""

from __future__ import annotations

import re
from typing import Annotated, Any

import pydantic
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from siyu.analytics.overview import adds_today, channel_rows
from siyu.auth.dependencies import get_database
from siyu.auth.scopes import Scope
from siyu.channels import service
from siyu.channels.models import Channel, ChannelKind, CodeStatus, Rotation
from siyu.channels.schemas import LINK_IDENTITY_TYPES, ChannelCreate, ChannelUpdate, CodeCreate, CodeRead, CodeUpdate
from siyu.console.dashboard import parse_range, stacked_chart, zone
from siyu.console.render import ConsoleUser, flash, gettext_for, redirect, render
from siyu.console.security import CurrentUser
from siyu.errors import Conflict, ValidationFailed
from siyu.kit.time import utcnow
from siyu.staff.service import list_staff
from siyu.tags import service as tags_service

router = APIRouter()

DEFAULT_DAYS = 30
BLANK_COST_ROWS = 2
BLANK_POOL_ROWS = 2
MIN_POOL_ROWS = 3
ROW_FIELD = re.compile(r"^(cost|pool)-(\d+)-(\w+)$")


async def form_data(request: Request) -> FormData:
    return await request.form()


Form = Annotated[FormData, Depends(form_data)]
Errors = dict[str, str]


def _can_write(user: ConsoleUser) -> bool:
    return Scope.channels_write in user.principal.scopes


def _errors(exc: Exception) -> Errors:
    """Field -> reason, fields written `costs.0.amount` / `pool.1.staff_id` whatever raised them."""
    if isinstance(exc, pydantic.ValidationError):
        return {
            ".".join(str(p) for p in e["loc"]) or "": str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()
        }
    if isinstance(exc, ValidationFailed) and exc.details:
        return {
            str(d.get("field", "")).replace("[", ".").replace("]", ""): str(d.get("reason", exc.message))
            for d in exc.details
        }
    if isinstance(exc, ValidationFailed | Conflict):
        return {"": exc.message}
    raise exc


def _rows(form: FormData, prefix: str) -> dict[int, dict[str, str]]:
    rows: dict[int, dict[str, str]] = {}
    for key, value in form.multi_items():
        match = ROW_FIELD.match(key)
        if match and match.group(1) == prefix and isinstance(value, str):
            rows.setdefault(int(match.group(2)), {})[match.group(3)] = value.strip()
    return {n: row for n, row in sorted(rows.items()) if any(row.values())}


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


# --- channels --------------------------------------------------------------------------------------


def _channel_state(form: FormData) -> dict[str, Any]:
    """What the channel form sent, as the form shows it again (strings; blank rows dropped)."""
    return {"kind": _text(form, "kind"), "name": _text(form, "name"), "costs": list(_rows(form, "cost").values())}


def _channel_state_of(session: Session, channel: Channel) -> dict[str, Any]:
    (read,) = service.channels_read(session, [channel])
    return {
        "kind": read.kind.value,
        "name": read.name,
        "costs": [
            {"start": c.period_start.isoformat(), "end": c.period_end.isoformat(), "amount": f"{c.amount:.2f}"}
            for c in read.costs
        ],
    }


def _channel_body(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": state["kind"],
        "name": state["name"],
        "costs": [
            {"period_start": c.get("start", ""), "period_end": c.get("end", ""), "amount": c.get("amount", "")}
            for c in state["costs"]
        ],
    }


def _list_context(session: Session, request: Request, user: ConsoleUser) -> dict[str, Any]:
    tz = zone(user)
    date_from, date_to, range_error = parse_range(request, tz, DEFAULT_DAYS)
    rows = channel_rows(session, user.principal.workspace_id, tz, date_from, date_to)
    return {
        "rows": rows,
        "date_from": date_from,
        "date_to": date_to,
        "range_error": range_error,
        "kinds": list(ChannelKind),
        "can_write": _can_write(user),
        "state": {"kind": ChannelKind.douyin.value, "name": "", "costs": []},
        "errors": {},
        "blank_cost_rows": BLANK_COST_ROWS,
    }


@router.get("/channels")
def channels_page(request: Request, user: CurrentUser) -> Response:
    user.principal.require(Scope.channels_read)
    with get_database(request).transaction(write=False) as session:
        context = _list_context(session, request, user)
    return render(request, "channels/index.html", context, user=user)


@router.post("/channels")
def create_channel(request: Request, user: CurrentUser, form: Form) -> Response:
    _ = gettext_for(request)
    user.principal.require(Scope.channels_write)
    state = _channel_state(form)
    with get_database(request).transaction() as session:
        try:
            channel = service.create_channel(
                session, user.principal.workspace_id, ChannelCreate.model_validate(_channel_body(state))
            )
            channel_id = channel.id
            session.commit()
        except (pydantic.ValidationError, ValidationFailed, Conflict) as exc:
            session.rollback()
            context = _list_context(session, request, user)
            context.update(state=state, errors=_errors(exc))
            return render(request, "channels/index.html", context, user=user, status_code=422)
    response = redirect(request, f"/console/channels/{channel_id}")
    flash(response, _("Channel created."))
    return response


def _channel_context(session: Session, request: Request, user: ConsoleUser, channel_id: int) -> dict[str, Any]:
    workspace_id = user.principal.workspace_id
    channel = service.get_channel(session, workspace_id, channel_id)
    codes = service.list_codes(session, workspace_id, channel.id)
    today = utcnow().astimezone(zone(user)).date()
    return {
        "channel": channel,
        "codes": codes,
        "pools": service.pool_of(session, [c.id for c in codes]),
        "today": adds_today(session, [c.id for c in codes], today),
        "kinds": list(ChannelKind),
        "can_write": _can_write(user),
        "state": _channel_state_of(session, channel),
        "errors": {},
        "blank_cost_rows": BLANK_COST_ROWS,
    }


@router.get("/channels/{channel_id}")
def channel_page(request: Request, user: CurrentUser, channel_id: int) -> Response:
    user.principal.require(Scope.channels_read)
    with get_database(request).transaction(write=False) as session:
        context = _channel_context(session, request, user, channel_id)
    return render(request, "channels/channel.html", context, user=user)


@router.post("/channels/{channel_id}")
def update_channel(request: Request, user: CurrentUser, channel_id: int, form: Form) -> Response:
    _ = gettext_for(request)
    user.principal.require(Scope.channels_write)
    state = _channel_state(form)
    with get_database(request).transaction() as session:
        try:
            data = ChannelUpdate.model_validate(_channel_body(state))
            service.update_channel(session, user.principal.workspace_id, channel_id, data)
            session.commit()
        except (pydantic.ValidationError, ValidationFailed, Conflict) as exc:
            session.rollback()
            context = _channel_context(session, request, user, channel_id)
            context.update(state=state, errors=_errors(exc))
            return render(request, "channels/channel.html", context, user=user, status_code=422)
    response = redirect(request, f"/console/channels/{channel_id}")
    flash(response, _("Channel saved."))
    return response


# --- channel codes ---------------------------------------------------------------------------------


def _code_state(form: FormData) -> dict[str, Any]:
    return {
        "name": _text(form, "name"),
        "channel_id": _text(form, "channel_id"),
        "rotation": _text(form, "rotation") or Rotation.round_robin.value,
        "backup_staff_id": _text(form, "backup_staff_id"),
        "identity_type": _text(form, "identity_type") or "phone",
        "tag_ids": [v for v in form.getlist("tag_ids") if isinstance(v, str)],
        "welcome_text": _text(form, "welcome_text"),
        "welcome_link_title": _text(form, "welcome_link_title"),
        "welcome_link_url": _text(form, "welcome_link_url"),
        "pool": list(_rows(form, "pool").values()),
    }


def _code_state_of(code: CodeRead) -> dict[str, Any]:
    return {
        "name": code.name,
        "channel_id": str(code.channel_id),
        "rotation": code.rotation.value,
        "backup_staff_id": str(code.backup_staff_id or ""),
        "identity_type": code.identity_type,
        "tag_ids": [str(t) for t in code.tag_ids],
        "welcome_text": code.welcome_text or "",
        "welcome_link_title": code.welcome_link_title or "",
        "welcome_link_url": code.welcome_link_url or "",
        "pool": [
            {
                "staff_id": str(p.staff_id),
                "weight": str(p.weight),
                "cap": "" if p.daily_cap is None else str(p.daily_cap),
                "start": p.hours.start if p.hours else "",
                "end": p.hours.end if p.hours else "",
            }
            for p in code.pool
        ],
    }


def _code_body(state: dict[str, Any]) -> dict[str, Any]:
    """The form's strings as the API body; pydantic converts and checks them (and names the field)."""
    pool = []
    for row in state["pool"]:
        entry: dict[str, Any] = {"staff_id": row.get("staff_id", ""), "weight": row.get("weight") or 1}
        entry["daily_cap"] = row.get("cap") or None
        if row.get("start") or row.get("end"):
            entry["hours"] = {"start": row.get("start", ""), "end": row.get("end", "")}
        pool.append(entry)
    return {
        "channel_id": state["channel_id"],
        "name": state["name"],
        "rotation": state["rotation"],
        "pool": pool,
        "backup_staff_id": state["backup_staff_id"] or None,
        "tag_ids": state["tag_ids"],
        "identity_type": state["identity_type"],
        "welcome_text": state["welcome_text"] or None,
        "welcome_link_title": state["welcome_link_title"] or None,
        "welcome_link_url": state["welcome_link_url"] or None,
    }


def _form_context(session: Session, user: ConsoleUser, state: dict[str, Any], errors: Errors) -> dict[str, Any]:
    workspace_id = user.principal.workspace_id
    groups = tags_service.list_groups(session, workspace_id)
    tags = tags_service.list_tags(session, workspace_id)
    pool = list(state["pool"])
    pool += [{} for _ in range(max(BLANK_POOL_ROWS, MIN_POOL_ROWS - len(pool)))]
    return {
        "state": {**state, "pool": pool},
        "errors": errors,
        "channels": service.list_channels(session, workspace_id),
        "staff": [s for s in list_staff(session, workspace_id) if s.is_active],
        "tag_groups": [(g, [t for t in tags if t.group_id == g.id]) for g in groups],
        "rotations": list(Rotation),
        "identity_types": LINK_IDENTITY_TYPES,
    }


@router.get("/channels/{channel_id}/codes/new")
def new_code_page(request: Request, user: CurrentUser, channel_id: int) -> Response:
    user.principal.require(Scope.channels_write)
    with get_database(request).transaction(write=False) as session:
        channel = service.get_channel(session, user.principal.workspace_id, channel_id)
        state = _code_state_of_blank(channel.id)
        context = {"code": None, "channel": channel, **_form_context(session, user, state, {})}
    return render(request, "channels/code_form.html", context, user=user)


def _code_state_of_blank(channel_id: int) -> dict[str, Any]:
    return {
        "name": "",
        "channel_id": str(channel_id),
        "rotation": Rotation.round_robin.value,
        "backup_staff_id": "",
        "identity_type": "phone",
        "tag_ids": [],
        "welcome_text": "",
        "welcome_link_title": "",
        "welcome_link_url": "",
        "pool": [],
    }


@router.post("/channels/{channel_id}/codes")
def create_code(request: Request, user: CurrentUser, channel_id: int, form: Form) -> Response:
    _ = gettext_for(request)
    user.principal.require(Scope.channels_write)
    state = _code_state(form)
    with get_database(request).transaction() as session:
        channel = service.get_channel(session, user.principal.workspace_id, channel_id)
        try:
            code = service.create_code(
                session, user.principal.workspace_id, CodeCreate.model_validate(_code_body(state))
            )
            code_id = code.id
            session.commit()
        except (pydantic.ValidationError, ValidationFailed, Conflict) as exc:
            session.rollback()
            context = {"code": None, "channel": channel, **_form_context(session, user, state, _errors(exc))}
            return render(request, "channels/code_form.html", context, user=user, status_code=422)
    response = redirect(request, f"/console/channel-codes/{code_id}")
    flash(response, _("Channel code created."))
    return response


@router.get("/channel-codes/{code_id}/edit")
def edit_code_page(request: Request, user: CurrentUser, code_id: int) -> Response:
    user.principal.require(Scope.channels_write)
    workspace_id = user.principal.workspace_id
    with get_database(request).transaction(write=False) as session:
        (code,) = service.codes_read(session, [service.get_code(session, workspace_id, code_id)])
        channel = service.get_channel(session, workspace_id, code.channel_id)
        context = {"code": code, "channel": channel, **_form_context(session, user, _code_state_of(code), {})}
    return render(request, "channels/code_form.html", context, user=user)


@router.post("/channel-codes/{code_id}/edit")
def update_code(request: Request, user: CurrentUser, code_id: int, form: Form) -> Response:
    _ = gettext_for(request)
    user.principal.require(Scope.channels_write)
    workspace_id = user.principal.workspace_id
    state = _code_state(form)
    with get_database(request).transaction() as session:
        try:
            service.update_code(session, workspace_id, code_id, CodeUpdate.model_validate(_code_body(state)))
            session.commit()
        except (pydantic.ValidationError, ValidationFailed, Conflict) as exc:
            session.rollback()
            (code,) = service.codes_read(session, [service.get_code(session, workspace_id, code_id)])
            channel = service.get_channel(session, workspace_id, code.channel_id)
            context = {"code": code, "channel": channel, **_form_context(session, user, state, _errors(exc))}
            return render(request, "channels/code_form.html", context, user=user, status_code=422)
    response = redirect(request, f"/console/channel-codes/{code_id}")
    flash(response, _("Channel code saved."))
    return response


def _set_status(request: Request, user: ConsoleUser, code_id: int, form: FormData, status: CodeStatus) -> Response:
    _ = gettext_for(request)
    user.principal.require(Scope.channels_write)
    with get_database(request).transaction() as session:
        code = service.set_status(session, user.principal.workspace_id, code_id, status)
        name, channel_id = code.name, code.channel_id
        session.commit()
    back = str(form.get("next") or "")
    target = back if back in (f"/console/channels/{channel_id}", f"/console/channel-codes/{code_id}") else None
    response = redirect(request, target or f"/console/channel-codes/{code_id}")
    if status is CodeStatus.paused:
        flash(response, _("“%(name)s” is paused: it takes no new contacts.") % {"name": name})
    else:
        flash(response, _("“%(name)s” takes new contacts again.") % {"name": name})
    return response


@router.post("/channel-codes/{code_id}/pause")
def pause_code(request: Request, user: CurrentUser, code_id: int, form: Form) -> Response:
    return _set_status(request, user, code_id, form, CodeStatus.paused)


@router.post("/channel-codes/{code_id}/resume")
def resume_code(request: Request, user: CurrentUser, code_id: int, form: Form) -> Response:
    return _set_status(request, user, code_id, form, CodeStatus.active)


@router.get("/channel-codes/{code_id}")
def code_page(request: Request, user: CurrentUser, code_id: int) -> Response:
    principal = user.principal
    principal.require(Scope.channels_read)
    tz = zone(user)
    date_from, date_to, range_error = parse_range(request, tz, DEFAULT_DAYS)
    with get_database(request).transaction(write=False) as session:
        (code,) = service.codes_read(session, [service.get_code(session, principal.workspace_id, code_id)])
        channel = service.get_channel(session, principal.workspace_id, code.channel_id)
        stats = service.code_stats(session, principal.workspace_id, code_id, date_from, date_to)
        staff = {s.id: s.name for s in list_staff(session, principal.workspace_id)}
        tags = {t.id: t.name for t in tags_service.list_tags(session, principal.workspace_id)}
    _ = gettext_for(request)
    days = [d.day for d in stats.per_day]
    chart = stacked_chart(
        days, [(_("Scans"), [d.scans for d in stats.per_day]), (_("Adds"), [d.adds for d in stats.per_day])], "line"
    )
    return render(
        request,
        "channels/code.html",
        {
            "code": code,
            "channel": channel,
            "stats": stats,
            "date_from": date_from,
            "date_to": date_to,
            "range_error": range_error,
            "chart_json": chart,
            "staff_names": staff,
            "tag_names": tags,
            "link": str(request.base_url).rstrip("/") + code.link_path,
            "can_write": _can_write(user),
        },
        user=user,
    )
