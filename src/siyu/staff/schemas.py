from __future__ import annotations

import datetime as dt

from pydantic import Field

from siyu.kit.schemas import ReadSchema, Schema
from siyu.staff.models import Role


class StaffCreate(Schema):
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)
    name: str = Field(min_length=1, max_length=100)
    role: Role
    password: str | None = Field(default=None, min_length=8, max_length=200)
    lead_id: int | None = None
    wecom_userid: str | None = Field(
        default=None, min_length=1, max_length=64, description="the staff member's WeCom UserID (企业微信账号)"
    )


class StaffUpdate(Schema):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    role: Role | None = None
    is_active: bool | None = None
    password: str | None = Field(default=None, min_length=8, max_length=200)
    lead_id: int | None = None
    wecom_userid: str | None = Field(default=None, min_length=1, max_length=64)


class StaffRead(ReadSchema):
    id: int
    email: str
    name: str
    role: Role
    is_active: bool
    lead_id: int | None
    wecom_userid: str | None
    created_at: dt.datetime
