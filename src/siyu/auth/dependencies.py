"""FastAPI dependencies: the request's database session and its authenticated caller.

Every router under /api/v1 carries `authenticated` (see siyu.api), so a route is private unless it is
put on the public router on purpose. A route that needs more than a valid credential declares its scope:
`principal: Principal = Depends(Authorize(Scope.contacts_write))`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from siyu.auth.principal import Principal
from siyu.auth.scopes import Scope
from siyu.auth.service import resolve_token
from siyu.db import Database
from siyu.errors import NotAuthenticated

SESSION_COOKIE = "siyu_session"


def get_database(request: Request) -> Database:
    db: Database = request.app.state.database
    return db


def _session(request: Request, *, write: bool) -> Iterator[Session]:
    session = get_database(request).session(write=write)
    try:
        yield session
    finally:
        # Endpoints commit explicitly before they answer (commit at the edge); anything left is undone.
        session.rollback()
        session.close()


def write_session(request: Request) -> Iterator[Session]:
    yield from _session(request, write=True)


def read_session(request: Request) -> Iterator[Session]:
    yield from _session(request, write=False)


WriteSession = Annotated[Session, Depends(write_session)]
ReadSession = Annotated[Session, Depends(read_session)]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise NotAuthenticated("Authorization header must be 'Bearer <API key or session token>'")
        return value.strip()
    return request.headers.get("x-api-key") or request.cookies.get(SESSION_COOKIE)


def authenticated(request: Request) -> Principal:
    """Resolves the caller once per request (cached on request.state)."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    token = bearer_token(request)
    if token is None:
        raise NotAuthenticated(
            "authentication required: send 'Authorization: Bearer <API key>' (create one with "
            "`siyu apikey create`) or sign in at POST /api/v1/auth/sessions"
        )
    with get_database(request).reading() as connection:
        principal = resolve_token(connection, token)
    request.state.principal = principal
    return principal


def Authorize(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    # async: no I/O here, so FastAPI runs it on the event loop instead of handing it to a thread.
    async def dependency(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
        principal.require(scope)
        return principal

    dependency.__name__ = f"authorize_{scope.name}"
    return dependency


CurrentPrincipal = Annotated[Principal, Depends(authenticated)]
