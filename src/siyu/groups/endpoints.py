"""/api/v1/groups and /api/v1/group-codes (scopes groups:read / groups:write)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from siyu.auth.dependencies import Authorize, ReadSession, WriteSession
from siyu.auth.principal import Principal
from siyu.auth.scopes import Scope
from siyu.groups import repository, service
from siyu.groups.models import GroupCodeStatus, GroupPurpose, GroupStatus
from siyu.groups.schemas import (
    GroupCodeCreate,
    GroupCodeRead,
    GroupCodeStats,
    GroupCodeUpdate,
    GroupCreate,
    GroupKpis,
    GroupRead,
    GroupUpdate,
    MemberRead,
)
from siyu.kit.qr import public_url, qr_response

router = APIRouter(tags=["groups"])

ReadGroups = Annotated[Principal, Depends(Authorize(Scope.groups_read))]
WriteGroups = Annotated[Principal, Depends(Authorize(Scope.groups_write))]
DateFrom = Annotated[dt.date | None, Query(alias="from", description="first day (workspace time); default 30 days ago")]
DateTo = Annotated[dt.date | None, Query(alias="to", description="last day, included; default today")]


@router.get("/groups", response_model=list[GroupRead])
def list_groups(
    session: ReadSession,
    principal: ReadGroups,
    purpose: GroupPurpose | None = None,
    status: GroupStatus | None = None,
    code_id: int | None = None,
) -> list[GroupRead]:
    groups = repository.list_groups(session, principal.workspace_id, purpose=purpose, status=status, code_id=code_id)
    return service.groups_read(session, groups)


@router.post("/groups", response_model=GroupRead, status_code=status.HTTP_201_CREATED)
def create_group(data: GroupCreate, session: WriteSession, principal: WriteGroups) -> GroupRead:
    (result,) = service.groups_read(session, [service.create_group(session, principal.workspace_id, data)])
    session.commit()
    return result


@router.get("/groups/{group_id}", response_model=GroupRead)
def get_group(group_id: int, session: ReadSession, principal: ReadGroups) -> GroupRead:
    (result,) = service.groups_read(session, [service.get_group(session, principal.workspace_id, group_id)])
    return result


@router.patch("/groups/{group_id}", response_model=GroupRead)
def update_group(group_id: int, data: GroupUpdate, session: WriteSession, principal: WriteGroups) -> GroupRead:
    (result,) = service.groups_read(session, [service.update_group(session, principal.workspace_id, group_id, data)])
    session.commit()
    return result


@router.get("/groups/{group_id}/members", response_model=list[MemberRead])
def group_members(
    group_id: int,
    session: ReadSession,
    principal: ReadGroups,
    current: Annotated[bool | None, Query(description="true: still in; false: left; leave out: both")] = None,
) -> list[MemberRead]:
    return service.members_read(session, principal.workspace_id, group_id, current)


@router.get(
    "/groups/{group_id}/kpis",
    response_model=GroupKpis,
    summary="Activity, open rate and orders, participation, answered questions: totals and per day",
)
def group_kpis(
    group_id: int, session: ReadSession, principal: ReadGroups, date_from: DateFrom = None, date_to: DateTo = None
) -> GroupKpis:
    return service.kpis(session, principal.workspace_id, group_id, date_from, date_to)


@router.get("/group-codes", response_model=list[GroupCodeRead])
def list_codes(session: ReadSession, principal: ReadGroups) -> list[GroupCodeRead]:
    return service.codes_read(session, repository.list_codes(session, principal.workspace_id))


@router.post("/group-codes", response_model=GroupCodeRead, status_code=status.HTTP_201_CREATED)
def create_code(data: GroupCodeCreate, session: WriteSession, principal: WriteGroups) -> GroupCodeRead:
    (result,) = service.codes_read(session, [service.create_code(session, principal.workspace_id, data)])
    session.commit()
    return result


@router.get("/group-codes/{code_id}", response_model=GroupCodeRead)
def get_code(code_id: int, session: ReadSession, principal: ReadGroups) -> GroupCodeRead:
    (result,) = service.codes_read(session, [service.get_code(session, principal.workspace_id, code_id)])
    return result


@router.patch("/group-codes/{code_id}", response_model=GroupCodeRead)
def update_code(code_id: int, data: GroupCodeUpdate, session: WriteSession, principal: WriteGroups) -> GroupCodeRead:
    (result,) = service.codes_read(session, [service.update_code(session, principal.workspace_id, code_id, data)])
    session.commit()
    return result


@router.post("/group-codes/{code_id}/pause", response_model=GroupCodeRead, summary="Stop showing groups")
def pause_code(code_id: int, session: WriteSession, principal: WriteGroups) -> GroupCodeRead:
    code = service.set_code_status(session, principal.workspace_id, code_id, GroupCodeStatus.paused)
    (result,) = service.codes_read(session, [code])
    session.commit()
    return result


@router.post("/group-codes/{code_id}/resume", response_model=GroupCodeRead, summary="Show groups again")
def resume_code(code_id: int, session: WriteSession, principal: WriteGroups) -> GroupCodeRead:
    code = service.set_code_status(session, principal.workspace_id, code_id, GroupCodeStatus.active)
    (result,) = service.codes_read(session, [code])
    session.commit()
    return result


@router.post(
    "/group-codes/{code_id}/open-group",
    response_model=GroupRead,
    status_code=status.HTTP_201_CREATED,
    summary="Open the next group from the code's template now (pending until created in WeCom)",
)
def open_group(code_id: int, session: WriteSession, principal: WriteGroups) -> GroupRead:
    code = service.get_code(session, principal.workspace_id, code_id, for_update=True)
    (result,) = service.groups_read(session, [service.open_from_template(session, code)])
    session.commit()
    return result


@router.get(
    "/group-codes/{code_id}/stats",
    response_model=GroupCodeStats,
    summary="Scans, joins per day, and each group's fill level",
)
def code_stats(
    code_id: int, session: ReadSession, principal: ReadGroups, date_from: DateFrom = None, date_to: DateTo = None
) -> GroupCodeStats:
    return service.code_stats(session, principal.workspace_id, code_id, date_from, date_to)


def _code_url(request: Request, session: ReadSession, workspace_id: int, code_id: int) -> str:
    return public_url(request, f"/g/{service.get_code(session, workspace_id, code_id).slug}")


@router.get(
    "/group-codes/{code_id}/qr.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
    summary="The code's QR image (PNG) pointing at its public page",
)
def qr_png(
    code_id: int,
    request: Request,
    session: ReadSession,
    principal: ReadGroups,
    scale: Annotated[int, Query(ge=1, le=40, description="pixels per module")] = 10,
) -> Response:
    return qr_response(_code_url(request, session, principal.workspace_id, code_id), "png", scale)


@router.get(
    "/group-codes/{code_id}/qr.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
    summary="The code's QR image (SVG) pointing at its public page",
)
def qr_svg(code_id: int, request: Request, session: ReadSession, principal: ReadGroups) -> Response:
    return qr_response(_code_url(request, session, principal.workspace_id, code_id), "svg")
