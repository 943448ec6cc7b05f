from __future__ import annotations

import datetime as dt

from pydantic import Field

from siyu.kit.schemas import ReadSchema, Schema
from siyu.staff.models import Role


class SignIn(Schema):
    email: str = Field(max_length=254)
    password: str = Field(max_length=200)
    workspace_id: int | None = Field(default=None, description="needed only when the email is in several workspaces")


class SessionCreated(ReadSchema):
    token: str = Field(description="send as 'Authorization: Bearer <token>'; also set as a cookie")
    expires_at: dt.datetime
    staff_id: int
    workspace_id: int


class Me(ReadSchema):
    workspace_id: int
    staff_id: int | None
    role: Role | None
    api_key_id: int | None
    scopes: list[str]


class ApiKeyCreate(Schema):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] | None = Field(default=None, description="default: everything but staff and key admin")


class ApiKeyRead(ReadSchema):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_at: dt.datetime
    revoked_at: dt.datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="shown once; store it now")
