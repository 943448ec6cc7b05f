"""Issuing and checking API keys and staff sessions."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from siyu.auth.models import ApiKey, StaffSession
from siyu.auth.principal import Principal
from siyu.auth.scopes import DEFAULT_API_KEY_SCOPES, ROLE_SCOPES, Scope
from siyu.auth.tokens import (
    API_KEY_PREFIX,
    DUMMY_PASSWORD_HASH,
    SESSION_PREFIX,
    new_token,
    token_hash,
    verify_password,
)
from siyu.errors import NotAuthenticated, NotFound, validation_error
from siyu.kit.repository import get_in_workspace
from siyu.kit.time import utcnow
from siyu.staff.models import Staff
from siyu.workspaces.models import Workspace


def create_api_key(
    session: Session, *, workspace_id: int, name: str, scopes: frozenset[Scope] | None = None
) -> tuple[ApiKey, str]:
    """Returns the stored key and its plaintext, which is never stored and cannot be shown again."""
    if session.get(Workspace, workspace_id) is None:
        raise NotFound(f"workspace {workspace_id} does not exist; list them with `siyu workspace list`")
    if not name.strip():
        raise validation_error("name", "must not be empty")
    plaintext = new_token(API_KEY_PREFIX)
    key = ApiKey(
        workspace_id=workspace_id,
        name=name.strip(),
        prefix=plaintext[: len(API_KEY_PREFIX) + 4],
        key_hash=token_hash(plaintext),
        scopes=sorted(s.value for s in (scopes if scopes is not None else DEFAULT_API_KEY_SCOPES)),
    )
    session.add(key)
    session.flush()
    return key, plaintext


def revoke_api_key(session: Session, *, workspace_id: int, key_id: int) -> ApiKey:
    key = get_in_workspace(session, ApiKey, workspace_id, key_id, "API key")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    return key


def sign_in(
    session: Session,
    *,
    email: str,
    password: str,
    workspace_id: int | None,
    ttl_hours: int,
    max_failures: int = 5,
    lock_minutes: int = 15,
) -> tuple[StaffSession, str]:
    """Checks a staff member's password and opens a session.

    After `max_failures` wrong passwords in a row the account refuses sign-ins for `lock_minutes`,
    even with the right password. The caller commits also when this raises, so failures are counted.
    """
    now = utcnow()
    query = select(Staff).where(Staff.email == email.strip().lower(), Staff.is_active.is_(True))
    if workspace_id is not None:
        query = query.where(Staff.workspace_id == workspace_id)
    candidates = list(session.scalars(query))
    if not candidates:
        verify_password(DUMMY_PASSWORD_HASH, password)
        raise NotAuthenticated("email or password is wrong")
    locked = [s for s in candidates if s.locked_until is not None and s.locked_until > now]
    if locked and len(locked) == len(candidates):
        until = min(s.locked_until for s in locked if s.locked_until is not None)
        raise NotAuthenticated(
            f"too many wrong passwords: this account is locked until {until:%H:%M} UTC; "
            "try again then, or ask an admin to reset the password"
        )
    open_ = [s for s in candidates if s not in locked]
    matches = [s for s in open_ if s.password_hash and verify_password(s.password_hash, password)]
    if not matches:
        for staff in open_:
            staff.failed_sign_ins += 1
            if staff.failed_sign_ins >= max_failures:
                staff.locked_until = now + dt.timedelta(minutes=lock_minutes)
                staff.failed_sign_ins = 0
        session.flush()
        raise NotAuthenticated("email or password is wrong")
    if len(matches) > 1:
        raise validation_error(
            "workspace_id",
            "this email signs in to several workspaces; say which one",
            workspaces=[m.workspace_id for m in matches],
        )
    staff = matches[0]
    staff.failed_sign_ins = 0
    staff.locked_until = None
    plaintext = new_token(SESSION_PREFIX)
    staff_session = StaffSession(
        workspace_id=staff.workspace_id,
        staff_id=staff.id,
        token_hash=token_hash(plaintext),
        expires_at=now + dt.timedelta(hours=ttl_hours),
    )
    session.add(staff_session)
    session.flush()
    return staff_session, plaintext


def sign_out(session: Session, principal: Principal, token: str) -> None:
    row = session.scalar(select(StaffSession).where(StaffSession.token_hash == token_hash(token)))
    if row is not None and row.staff_id == principal.staff_id and row.revoked_at is None:
        row.revoked_at = utcnow()


def resolve_token(connection: Session | Connection, token: str) -> Principal:
    """Turns a bearer token into a Principal, or raises NotAuthenticated saying why. Reads columns, not
    entities, so a request can authenticate on a bare connection (see auth.dependencies)."""
    now = utcnow()
    digest = token_hash(token)
    if token.startswith(API_KEY_PREFIX):
        key = connection.execute(
            select(ApiKey.id, ApiKey.workspace_id, ApiKey.scopes, ApiKey.revoked_at).where(ApiKey.key_hash == digest)
        ).first()
        if key is None or key.revoked_at is not None:
            raise NotAuthenticated("API key is unknown or revoked")
        return Principal(
            workspace_id=key.workspace_id,
            scopes=frozenset(Scope(s) for s in key.scopes),
            api_key_id=key.id,
        )
    if token.startswith(SESSION_PREFIX):
        row = connection.execute(
            select(
                StaffSession.revoked_at,
                StaffSession.expires_at,
                Staff.id,
                Staff.workspace_id,
                Staff.role,
                Staff.is_active,
            )
            .join(Staff, Staff.id == StaffSession.staff_id)
            .where(StaffSession.token_hash == digest)
        ).first()
        if row is None:
            raise NotAuthenticated("session is unknown; sign in again")
        if row.revoked_at is not None or row.expires_at <= now:
            raise NotAuthenticated("session has expired or was signed out; sign in again")
        if not row.is_active:
            raise NotAuthenticated("this staff account is deactivated")
        return Principal(
            workspace_id=row.workspace_id,
            scopes=ROLE_SCOPES[row.role],
            staff_id=row.id,
            role=row.role,
        )
    raise NotAuthenticated(
        f"credential is neither an API key ({API_KEY_PREFIX}...) nor a staff session ({SESSION_PREFIX}...)"
    )
