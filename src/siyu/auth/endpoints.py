from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from sqlalchemy import select

from siyu.auth import service
from siyu.auth.dependencies import (
    SESSION_COOKIE,
    Authorize,
    CurrentPrincipal,
    ReadSession,
    WriteSession,
    bearer_token,
)
from siyu.auth.models import ApiKey
from siyu.auth.principal import Principal
from siyu.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, Me, SessionCreated, SignIn
from siyu.auth.scopes import Scope, parse_scopes
from siyu.config import get_settings
from siyu.errors import NotAuthenticated

# Signing in is the one thing a caller does before it has a credential.
public_router = APIRouter(tags=["auth"])
router = APIRouter(tags=["auth"])

ManageKeys = Annotated[Principal, Depends(Authorize(Scope.apikeys_write))]


@public_router.post("/auth/sessions", response_model=SessionCreated, status_code=status.HTTP_201_CREATED)
def sign_in(data: SignIn, response: Response, session: WriteSession) -> SessionCreated:
    settings = get_settings()
    try:
        staff_session, token = service.sign_in(
            session,
            email=data.email,
            password=data.password,
            workspace_id=data.workspace_id,
            ttl_hours=settings.session_ttl_hours,
            max_failures=settings.sign_in_max_failures,
            lock_minutes=settings.sign_in_lock_minutes,
        )
    except NotAuthenticated:
        session.commit()  # a wrong password counts toward the lock-out
        raise
    result = SessionCreated(
        token=token,
        expires_at=staff_session.expires_at,
        staff_id=staff_session.staff_id,
        workspace_id=staff_session.workspace_id,
    )
    session.commit()
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", max_age=settings.session_ttl_hours * 3600)
    return result


@router.delete("/auth/sessions/current", status_code=status.HTTP_204_NO_CONTENT)
def sign_out(request: Request, session: WriteSession, principal: CurrentPrincipal) -> Response:
    token = bearer_token(request)
    if token:
        service.sign_out(session, principal, token)
    session.commit()
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/auth/me", response_model=Me, summary="Who am I: workspace, role, scopes")
def me(principal: CurrentPrincipal) -> Me:
    return Me(
        workspace_id=principal.workspace_id,
        staff_id=principal.staff_id,
        role=principal.role,
        api_key_id=principal.api_key_id,
        scopes=sorted(s.value for s in principal.scopes),
    )


@router.get("/api-keys", response_model=list[ApiKeyRead])
def list_keys(session: ReadSession, principal: ManageKeys) -> list[ApiKeyRead]:
    rows = session.scalars(select(ApiKey).where(ApiKey.workspace_id == principal.workspace_id).order_by(ApiKey.id))
    return [ApiKeyRead.model_validate(r) for r in rows]


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED)
def create_key(data: ApiKeyCreate, session: WriteSession, principal: ManageKeys) -> ApiKeyCreated:
    scopes = parse_scopes(data.scopes) if data.scopes is not None else None
    key, plaintext = service.create_api_key(session, workspace_id=principal.workspace_id, name=data.name, scopes=scopes)
    result = ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), key=plaintext)
    session.commit()
    return result


@router.delete("/api-keys/{key_id}", response_model=ApiKeyRead, summary="Revoke a key")
def revoke_key(key_id: int, session: WriteSession, principal: ManageKeys) -> ApiKeyRead:
    result = ApiKeyRead.model_validate(
        service.revoke_api_key(session, workspace_id=principal.workspace_id, key_id=key_id)
    )
    session.commit()
    return result
