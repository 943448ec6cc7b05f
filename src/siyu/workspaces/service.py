from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.errors import NotFound, validation_error
from siyu.workspaces.models import Workspace


def create_workspace(session: Session, name: str, *, timezone: str = "Asia/Shanghai") -> Workspace:
    if not name.strip():
        raise validation_error("name", "must not be empty")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise validation_error("timezone", f"{timezone!r} is not an IANA time zone such as Asia/Shanghai") from None
    workspace = Workspace(name=name.strip(), timezone=timezone, event_seq=0)
    session.add(workspace)
    session.flush()
    return workspace


def get_workspace(session: Session, workspace_id: int) -> Workspace:
    workspace = session.get(Workspace, workspace_id)
    if workspace is None:
        raise NotFound(f"workspace {workspace_id} does not exist; list them with `siyu workspace list`")
    return workspace


def list_workspaces(session: Session) -> list[Workspace]:
    return list(session.scalars(select(Workspace).order_by(Workspace.id)))
