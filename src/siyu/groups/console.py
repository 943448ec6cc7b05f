"""Console pages for groups (社群) and group codes (群活码): the groups list with each group's KPI, a
group's page (members, KPIs and their series), a code's page (its groups and how full they are)."""

from __future__ import annotations

from typing import Annotated, Any

import pydantic
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from siyu.auth.dependencies import get_database
from siyu.auth.scopes import Scope
from siyu.console.dashboard import parse_range, stacked_chart, zone
from siyu.console.render import ConsoleUser, flash, gettext_for, redirect, render
from siyu.console.security import CurrentUser
from siyu.content.console import content_labels
from siyu.errors import Conflict, ValidationFailed
from siyu.groups import repository, service
from siyu.groups.models import GroupCodeStatus, GroupPurpose, GroupStatus
from siyu.groups.schemas import GroupCodeCreate, GroupCreate, GroupUpdate
from siyu.recommend import service as recommend_service
from siyu.segments.console import lifecycle_labels
from siyu.staff.service import list_staff

router = APIRouter()

DEFAULT_DAYS = 30
MEMBERS_SHOWN = 500
RECOMMENDED = 5


async def form_data(request: Request) -> FormData:
    return await request.form()


Form = Annotated[FormData, Depends(form_data)]
Errors = dict[str, str]


def _can_write(user: ConsoleUser) -> bool:
    return Scope.groups_write in user.principal.scopes


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _errors(exc: Exception) -> Errors:
    if isinstance(exc, pydantic.ValidationError):
        return {
            ".".join(str(p) for p in e["loc"]) or "": str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()
        }
    if isinstance(exc, ValidationFailed) and exc.details:
        return {str(d.get("field", "")): str(d.get("reason", exc.message)) for d in exc.details}
    if isinstance(exc, ValidationFailed | Conflict):
        return {"": exc.message}
    raise exc


def _group_state(form: FormData) -> dict[str, Any]:
    return {
        "name": _text(form, "name"),
        "purpose": _text(form, "purpose") or GroupPurpose.broadcast.value,
        "purpose_label": _text(form, "purpose_label"),
        "owner_staff_id": _text(form, "owner_staff_id"),
        "helper_staff_ids": [v for v in form.getlist("helper_staff_ids") if isinstance(v, str) and v],
        "capacity": _text(form, "capacity") or "200",
        "status": _text(form, "status") or GroupStatus.active.value,
        "wecom_chat_id": _text(form, "wecom_chat_id"),
        "join_url": _text(form, "join_url"),
    }


def _group_body(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": state["name"],
        "purpose": state["purpose"],
        "purpose_label": state["purpose_label"] or None,
        "owner_staff_id": state["owner_staff_id"] or None,
        "helper_staff_ids": state["helper_staff_ids"],
        "capacity": state["capacity"],
        "status": state["status"],
        "wecom_chat_id": state["wecom_chat_id"] or None,
        "join_url": state["join_url"] or None,
    }


BLANK_GROUP = {
    "name": "",
    "purpose": GroupPurpose.broadcast.value,
    "purpose_label": "",
    "owner_staff_id": "",
    "helper_staff_ids": [],
    "capacity": "200",
    "status": GroupStatus.active.value,
    "wecom_chat_id": "",
    "join_url": "",
}
BLANK_CODE = {
    "name": "",
    "group_ids": [],
    "threshold": "",
    "template_name": "",
    "template_purpose": "",
    "template_owner": "",
    "template_capacity": "200",
}


def _list_context(session: Session, request: Request, user: ConsoleUser) -> dict[str, Any]:
    workspace_id = user.principal.workspace_id
    date_from, date_to, range_error = parse_range(request, zone(user), DEFAULT_DAYS)
    raw_purpose = request.query_params.get("purpose") or ""
    purpose = GroupPurpose(raw_purpose) if raw_purpose in GroupPurpose.__members__ else None
    groups = repository.list_groups(session, workspace_id, purpose=purpose)
    kpis = service.group_kpis(session, workspace_id, groups, date_from, date_to)
    codes = service.codes_read(session, repository.list_codes(session, workspace_id))
    return {
        "groups": groups,
        "kpis": kpis,
        "codes": codes,
        "purpose": purpose.value if purpose else "",
        "purposes": list(GroupPurpose),
        "statuses": list(GroupStatus),
        "staff": [s for s in list_staff(session, workspace_id) if s.is_active],
        "staff_names": {s.id: s.name for s in list_staff(session, workspace_id)},
        "free_groups": [g for g in groups if g.code_id is None and g.status in service.IN_ROTATION],
        "date_from": date_from,
        "date_to": date_to,
        "range_error": range_error,
        "can_write": _can_write(user),
        "state": dict(BLANK_GROUP),
        "code_state": dict(BLANK_CODE),
        "errors": {},
        "code_errors": {},
    }


@router.get("/groups")
def groups_page(request: Request, user: CurrentUser) -> Response:
    user.principal.require(Scope.groups_read)
    with get_database(request).transaction(write=False) as session:
        context = _list_context(session, request, user)
    return render(request, "groups/index.html", context, user=user)


@router.post("/groups")
def create_group(request: Request, user: CurrentUser, form: Form) -> Response:
    _ = gettext_for(request)
    user.principal.require(Scope.groups_write)
    state = _group_state(form)
    with get_database(request).transaction() as session:
        try:
            data = GroupCreate.model_validate(_group_body(state))
            group_id = service.create_group(session, user.principal.workspace_id, data).id
            session.commit()
        except (pydantic.ValidationError, ValidationFailed, Conflict) as exc:
            session.rollback()
            context = _list_context(session, request, user)
            context.update(state=state, errors=_errors(exc))
            return render(request, "groups/index.html", context, user=user, status_code=422)
    response = redirect(request, f"/console/groups/{group_id}")
    flash(response, _("Group created."))
    return response


def _group_context(session: Session, request: Request, user: ConsoleUser, group_id: int) -> dict[str, Any]:
    workspace_id = user.principal.workspace_id
    group = service.get_group(session, workspace_id, group_id)
    (read,) = service.groups_read(session, [group])
    date_from, date_to, range_error = parse_range(request, zone(user), DEFAULT_DAYS)
    kpis = service.group_kpis(session, workspace_id, [group], date_from, date_to)[group.id]
    _ = gettext_for(request)
    days = [d.day for d in kpis.per_day]
    chart = stacked_chart(
        days,
        [
            (_("Members"), [d.members for d in kpis.per_day]),
            (_("Spoke"), [d.speakers for d in kpis.per_day]),
            (_("Opened a push"), [d.viewers for d in kpis.per_day]),
            (_("Took part"), [d.participants for d in kpis.per_day]),
            (_("Questions"), [d.questions for d in kpis.per_day]),
            (_("Answered"), [d.answered for d in kpis.per_day]),
        ],
        "line",
    )
    code = service.get_code(session, workspace_id, group.code_id) if group.code_id else None
    recommendations = None
    if Scope.content_read in user.principal.scopes:
        # the members' mean portrait, their most common stage; "seen" is what was pushed to the group
        recommendations, _members = recommend_service.recommend_for_group(
            session, workspace_id, group.id, limit=RECOMMENDED
        )
    return {
        "group": read,
        "kpis": kpis,
        "chart_json": chart,
        "members": repository.members(session, group.id, limit=MEMBERS_SHOWN),
        "code": code,
        "purposes": list(GroupPurpose),
        "statuses": list(GroupStatus),
        "staff": [s for s in list_staff(session, workspace_id) if s.is_active],
        "staff_names": {s.id: s.name for s in list_staff(session, workspace_id)},
        "date_from": date_from,
        "date_to": date_to,
        "range_error": range_error,
        "can_write": _can_write(user),
        "recommendations": recommendations,
        "stage_labels": lifecycle_labels(request),
        "kind_labels": content_labels(request)["kind"],
        "state": {
            "name": read.name,
            "purpose": read.purpose.value,
            "purpose_label": read.purpose_label or "",
            "owner_staff_id": str(read.owner_staff_id or ""),
            "helper_staff_ids": [str(s) for s in read.helper_staff_ids],
            "capacity": str(read.capacity),
            "status": read.status.value,
            "wecom_chat_id": read.wecom_chat_id or "",
            "join_url": read.join_url or "",
        },
        "errors": {},
    }


@router.get("/groups/{group_id}")
def group_page(request: Request, user: CurrentUser, group_id: int) -> Response:
    user.principal.require(Scope.groups_read)
    with get_database(request).transaction(write=False) as session:
        context = _group_context(session, request, user, group_id)
    return render(request, "groups/group.html", context, user=user)


@router.post("/groups/{group_id}")
def update_group(request: Request, user: CurrentUser, group_id: int, form: Form) -> Response:
    _ = gettext_for(request)
    user.principal.require(Scope.groups_write)
    state = _group_state(form)
    with get_database(request).transaction() as session:
        try:
            data = GroupUpdate.model_validate(_group_body(state))
            service.update_group(session, user.principal.workspace_id, group_id, data)
            session.commit()
        except (pydantic.ValidationError, ValidationFailed, Conflict) as exc:
            session.rollback()
            context = _group_context(session, request, user, group_id)
            context.update(state=state, errors=_errors(exc))
            return render(request, "groups/group.html", context, user=user, status_code=422)
    response = redirect(request, f"/console/groups/{group_id}")
    flash(response, _("Group saved."))
    return response


def _code_state(form: FormData) -> dict[str, Any]:
    return {
        "name": _text(form, "name"),
        "group_ids": [v for v in form.getlist("group_ids") if isinstance(v, str) and v],
        "threshold": _text(form, "threshold"),
        "template_name": _text(form, "template_name"),
        "template_purpose": _text(form, "template_purpose"),
        "template_owner": _text(form, "template_owner"),
        "template_capacity": _text(form, "template_capacity") or "200",
    }


def _code_body(state: dict[str, Any]) -> dict[str, Any]:
    template = None
    if state["template_name"]:
        template = {
            "name_pattern": state["template_name"],
            "purpose": state["template_purpose"] or GroupPurpose.activity.value,
            "owner_staff_id": state["template_owner"] or None,
            "capacity": state["template_capacity"],
        }
    return {
        "name": state["name"],
        "group_ids": state["group_ids"],
        "threshold": state["threshold"] or None,
        "template": template,
    }


@router.post("/group-codes")
def create_code(request: Request, user: CurrentUser, form: Form) -> Response:
    _ = gettext_for(request)
    user.principal.require(Scope.groups_write)
    state = _code_state(form)
    with get_database(request).transaction() as session:
        try:
            data = GroupCodeCreate.model_validate(_code_body(state))
            code_id = service.create_code(session, user.principal.workspace_id, data).id
            session.commit()
        except (pydantic.ValidationError, ValidationFailed, Conflict) as exc:
            session.rollback()
            context = _list_context(session, request, user)
            context.update(code_state=state, code_errors=_errors(exc))
            return render(request, "groups/index.html", context, user=user, status_code=422)
    response = redirect(request, f"/console/group-codes/{code_id}")
    flash(response, _("Group code created."))
    return response


@router.get("/group-codes/{code_id}")
def code_page(request: Request, user: CurrentUser, code_id: int) -> Response:
    principal = user.principal
    principal.require(Scope.groups_read)
    date_from, date_to, range_error = parse_range(request, zone(user), DEFAULT_DAYS)
    with get_database(request).transaction(write=False) as session:
        (code,) = service.codes_read(session, [service.get_code(session, principal.workspace_id, code_id)])
        stats = service.code_stats(session, principal.workspace_id, code_id, date_from, date_to)
        staff = {s.id: s.name for s in list_staff(session, principal.workspace_id)}
    _ = gettext_for(request)
    chart = stacked_chart(
        [d.day for d in stats.per_day],
        [(_("Scans"), [d.scans for d in stats.per_day]), (_("Joins"), [d.joins for d in stats.per_day])],
        "line",
    )
    return render(
        request,
        "groups/code.html",
        {
            "code": code,
            "stats": stats,
            "chart_json": chart,
            "staff_names": staff,
            "link": str(request.base_url).rstrip("/") + code.link_path,
            "date_from": date_from,
            "date_to": date_to,
            "range_error": range_error,
            "can_write": _can_write(user),
        },
        user=user,
    )


@router.post("/group-codes/{code_id}/open-group")
def open_group(request: Request, user: CurrentUser, code_id: int) -> Response:
    _ = gettext_for(request)
    user.principal.require(Scope.groups_write)
    with get_database(request).transaction() as session:
        code = service.get_code(session, user.principal.workspace_id, code_id, for_update=True)
        try:
            name = service.open_from_template(session, code).name
        except ValidationFailed as exc:
            session.rollback()
            response = redirect(request, f"/console/group-codes/{code_id}")
            flash(response, exc.message, "error")
            return response
        session.commit()
    response = redirect(request, f"/console/group-codes/{code_id}")
    message = _("“%(name)s” opened: create it in WeCom, then fill in its chat id and join link.")
    flash(response, message % {"name": name})
    return response


def _set_status(request: Request, user: ConsoleUser, code_id: int, status: GroupCodeStatus) -> Response:
    _ = gettext_for(request)
    user.principal.require(Scope.groups_write)
    with get_database(request).transaction() as session:
        service.set_code_status(session, user.principal.workspace_id, code_id, status)
        session.commit()
    response = redirect(request, f"/console/group-codes/{code_id}")
    flash(response, _("Group code paused.") if status is GroupCodeStatus.paused else _("Group code resumed."))
    return response


@router.post("/group-codes/{code_id}/pause")
def pause_code(request: Request, user: CurrentUser, code_id: int) -> Response:
    return _set_status(request, user, code_id, GroupCodeStatus.paused)


@router.post("/group-codes/{code_id}/resume")
def resume_code(request: Request, user: CurrentUser, code_id: int) -> Response:
    return _set_status(request, user, code_id, GroupCodeStatus.active)
