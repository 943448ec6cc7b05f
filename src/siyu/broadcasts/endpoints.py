"""/api/v1/broadcasts routes (scopes broadcasts:read / broadcasts:write).

Only callers with broadcasts:write send broadcasts: admins, operators and API keys. Consultants have no
broadcast scope (they reach their own customers one by one, and through journeys).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from sqlalchemy.orm import Session

from siyu.auth.dependencies import Authorize, ReadSession, WriteSession
from siyu.auth.principal import Principal
from siyu.auth.scopes import Scope
from siyu.broadcasts import service, wecom
from siyu.broadcasts.models import Broadcast, BroadcastStatus
from siyu.broadcasts.schemas import (
    BroadcastCreate,
    BroadcastPreviewIn,
    BroadcastRead,
    PlanRead,
    ReminderRead,
    StaffTaskRead,
)
from siyu.kit.time import utcnow

router = APIRouter(tags=["broadcasts"])

ReadBroadcasts = Annotated[Principal, Depends(Authorize(Scope.broadcasts_read))]
WriteBroadcasts = Annotated[Principal, Depends(Authorize(Scope.broadcasts_write))]


def _read(session: Session, broadcast: Broadcast) -> BroadcastRead:
    (result,) = service.broadcasts_read(session, [broadcast])
    return result


@router.get("/broadcasts", response_model=list[BroadcastRead], summary="Broadcasts, newest first")
def list_broadcasts(
    session: ReadSession,
    principal: ReadBroadcasts,
    status: BroadcastStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[BroadcastRead]:
    rows = service.list_broadcasts(session, principal.workspace_id, status=status, limit=limit)
    return service.broadcasts_read(session, rows)


@router.post(
    "/broadcasts/preview",
    response_model=PlanRead,
    summary="The audience after budgets (total, eligible, excluded by reason) of a broadcast not yet created",
)
def preview(data: BroadcastPreviewIn, session: ReadSession, principal: ReadBroadcasts) -> PlanRead:
    return service.preview(session, principal, data)


@router.post(
    "/broadcasts",
    response_model=BroadcastRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a broadcast: it starts now (the audience is frozen now), or at run_at",
)
def create(data: BroadcastCreate, session: WriteSession, principal: WriteBroadcasts) -> BroadcastRead:
    broadcast = service.create(session, principal, data, now=utcnow())
    result = _read(session, broadcast)
    session.commit()
    return result


@router.get("/broadcasts/{broadcast_id}", response_model=BroadcastRead, summary="A broadcast, its plan and progress")
def get_broadcast(broadcast_id: int, session: ReadSession, principal: ReadBroadcasts) -> BroadcastRead:
    return _read(session, service.get_broadcast(session, principal.workspace_id, broadcast_id))


@router.post(
    "/broadcasts/{broadcast_id}/start",
    response_model=BroadcastRead,
    summary="Start a scheduled broadcast now (its audience is frozen now)",
)
def start(broadcast_id: int, session: WriteSession, principal: WriteBroadcasts) -> BroadcastRead:
    broadcast = service.start_now(session, principal.workspace_id, broadcast_id)
    result = _read(session, broadcast)
    session.commit()
    return result


@router.post(
    "/broadcasts/{broadcast_id}/cancel",
    response_model=BroadcastRead,
    summary="Stop a scheduled or sending broadcast; what was sent stays sent",
)
def cancel(broadcast_id: int, session: WriteSession, principal: WriteBroadcasts) -> BroadcastRead:
    broadcast = service.cancel(session, principal.workspace_id, broadcast_id)
    result = _read(session, broadcast)
    session.commit()
    return result


@router.get(
    "/broadcasts/{broadcast_id}/staff",
    response_model=list[StaffTaskRead],
    summary="WeCom: each sending staff member's task, and whether they confirmed it",
)
def staff_tasks(
    broadcast_id: int,
    session: ReadSession,
    principal: ReadBroadcasts,
    unconfirmed: Annotated[bool, Query(description="only tasks still waiting for the staff member")] = False,
) -> list[StaffTaskRead]:
    broadcast = service.get_broadcast(session, principal.workspace_id, broadcast_id)
    return [
        row
        for row in service.staff_tasks_read(session, broadcast)
        if not unconfirmed or row.status.value in ("pending", "creating", "created")
    ]


@router.post(
    "/broadcasts/{broadcast_id}/staff/{staff_id}/remind",
    response_model=ReminderRead,
    status_code=status.HTTP_201_CREATED,
    summary="Remind a staff member to confirm the broadcast in WeCom (a staff task; one a day)",
)
def remind(broadcast_id: int, staff_id: int, session: WriteSession, principal: WriteBroadcasts) -> ReminderRead:
    task_id = wecom.remind(session, principal.workspace_id, broadcast_id, staff_id)
    session.commit()
    return ReminderRead(staff_id=staff_id, task_id=task_id)


@router.post(
    "/broadcasts/{broadcast_id}/refresh",
    response_model=BroadcastRead,
    summary="WeCom: read the staff members' confirmations again on the worker's next turn",
)
def refresh(broadcast_id: int, session: WriteSession, principal: WriteBroadcasts) -> BroadcastRead:
    broadcast = service.get_broadcast(session, principal.workspace_id, broadcast_id)
    wecom.recheck(session, principal.workspace_id, broadcast.id)
    result = _read(session, broadcast)
    session.commit()
    return result
