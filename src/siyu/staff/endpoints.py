from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from siyu.auth.dependencies import Authorize, ReadSession, WriteSession
from siyu.auth.principal import Principal
from siyu.auth.scopes import Scope
from siyu.staff import service
from siyu.staff.schemas import StaffCreate, StaffRead, StaffUpdate

router = APIRouter(tags=["staff"])

ReadStaff = Annotated[Principal, Depends(Authorize(Scope.staff_read))]
WriteStaff = Annotated[Principal, Depends(Authorize(Scope.staff_write))]


@router.get("/staff", response_model=list[StaffRead])
def list_staff(session: ReadSession, principal: ReadStaff) -> list[StaffRead]:
    return [StaffRead.model_validate(s) for s in service.list_staff(session, principal.workspace_id)]


@router.post("/staff", response_model=StaffRead, status_code=status.HTTP_201_CREATED)
def add_staff(data: StaffCreate, session: WriteSession, principal: WriteStaff) -> StaffRead:
    result = StaffRead.model_validate(service.add_staff(session, principal.workspace_id, data))
    session.commit()
    return result


@router.get("/staff/{staff_id}", response_model=StaffRead)
def get_staff(staff_id: int, session: ReadSession, principal: ReadStaff) -> StaffRead:
    return StaffRead.model_validate(service.get_staff(session, principal.workspace_id, staff_id))


@router.patch("/staff/{staff_id}", response_model=StaffRead)
def update_staff(staff_id: int, data: StaffUpdate, session: WriteSession, principal: WriteStaff) -> StaffRead:
    result = StaffRead.model_validate(service.update_staff(session, principal.workspace_id, staff_id, data))
    session.commit()
    return result
