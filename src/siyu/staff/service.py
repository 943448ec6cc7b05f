from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.auth.tokens import hash_password
from siyu.errors import validation_error
from siyu.kit.repository import flush_unique, get_in_workspace
from siyu.staff.models import Staff
from siyu.staff.schemas import StaffCreate, StaffUpdate
from siyu.workspaces.service import get_workspace


def add_staff(session: Session, workspace_id: int, data: StaffCreate) -> Staff:
    get_workspace(session, workspace_id)
    email = data.email.strip().lower()
    if data.lead_id is not None:
        get_staff(session, workspace_id, data.lead_id)
    staff = Staff(
        workspace_id=workspace_id,
        email=email,
        name=data.name,
        role=data.role,
        password_hash=hash_password(data.password) if data.password else None,
        lead_id=data.lead_id,
        wecom_userid=data.wecom_userid,
    )
    session.add(staff)
    flush_unique(session, f"staff with email {email} already exists in this workspace")
    return staff


def get_staff(session: Session, workspace_id: int, staff_id: int) -> Staff:
    return get_in_workspace(session, Staff, workspace_id, staff_id, "staff")


def update_staff(session: Session, workspace_id: int, staff_id: int, data: StaffUpdate) -> Staff:
    staff = get_staff(session, workspace_id, staff_id)
    fields = data.model_dump(exclude_unset=True)
    if "lead_id" in fields and fields["lead_id"] is not None:
        if fields["lead_id"] == staff.id:
            raise validation_error("lead_id", "a staff member cannot lead themselves")
        get_staff(session, workspace_id, fields["lead_id"])
    password = fields.pop("password", None)
    if password:
        staff.password_hash = hash_password(password)
    for name, value in fields.items():
        setattr(staff, name, value)
    session.flush()
    return staff


def list_staff(session: Session, workspace_id: int) -> list[Staff]:
    return list(session.scalars(select(Staff).where(Staff.workspace_id == workspace_id).order_by(Staff.id)))
