"""Who is using the console: the staff member behind the `siyu_session` cookie."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from siyu.auth.dependencies import SESSION_COOKIE, get_database
from siyu.auth.service import resolve_token
from siyu.console.render import ConsoleUser
from siyu.errors import NotAuthenticated
from siyu.staff.models import Staff
from siyu.workspaces.models import Workspace


def console_user(request: Request) -> ConsoleUser:
    """The signed-in staff member; NotAuthenticated (a redirect to the sign-in page) otherwise.
    API keys do not open the console: it is for people."""
    cached = getattr(request.state, "console_user", None)
    if isinstance(cached, ConsoleUser):
        return cached
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise NotAuthenticated("sign in to use the console")
    with get_database(request).transaction(write=False) as session:
        principal = resolve_token(session, token)
        if principal.staff_id is None:
            raise NotAuthenticated("the console needs a staff sign-in, not an API key")
        staff = session.get(Staff, principal.staff_id)
        workspace = session.get(Workspace, principal.workspace_id)
        assert staff is not None and workspace is not None
        user = ConsoleUser(principal, staff.name, staff.email, workspace.name, workspace.timezone)
    request.state.console_user = user
    request.state.principal = principal
    return user


CurrentUser = Annotated[ConsoleUser, Depends(console_user)]
