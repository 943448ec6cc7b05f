from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from siyu.contacts.models import AttributeType, Gender
from siyu.kit.schemas import ReadSchema, Schema
from siyu.tags.schemas import ContactSelection


class IdentityIn(Schema):
    type: str = Field(max_length=40, examples=["phone"])
    value: str = Field(max_length=256, examples=["13800138000"])


class IdentityRead(ReadSchema):
    type: str
    value: str


class TagBrief(ReadSchema):
    id: int
    name: str
    group_id: int


class ProfileFields(Schema):
    """The standard profile (seed 002's customer statistics table)."""

    name: str | None = Field(default=None, max_length=100)
    owner_id: int | None = None
    source_channel: str | None = Field(default=None, max_length=64)
    first_consult_at: dt.datetime | None = None
    consult_question: str | None = Field(default=None, max_length=5000)
    region: str | None = Field(default=None, max_length=100)
    occupation: str | None = Field(default=None, max_length=100)
    gender: Gender | None = None
    birthday: dt.date | None = None
    timezone: str | None = Field(
        default=None,
        max_length=64,
        description="IANA time zone, e.g. Asia/Shanghai; quiet hours and daily budgets follow it "
        "(unset: the workspace's)",
    )
    attributes: dict[str, Any] = Field(
        default_factory=dict, description="custom attributes declared at /api/v1/attributes"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Asia/Shanghai") from None
        return value


class ContactCreate(ProfileFields):
    identities: list[IdentityIn] = Field(default_factory=list, max_length=50)


class ContactUpdate(ProfileFields):
    """Only the fields sent are changed. In `attributes`, a key set to null removes that attribute."""


class ContactRead(ReadSchema):
    id: int
    name: str | None
    owner_id: int | None
    source_channel: str | None
    first_consult_at: dt.datetime | None
    consult_question: str | None
    region: str | None
    occupation: str | None
    gender: Gender | None
    birthday: dt.date | None
    timezone: str | None
    attributes: dict[str, Any]
    identities: list[IdentityRead]
    tags: list[TagBrief]
    created_at: dt.datetime
    updated_at: dt.datetime


class NoteCreate(Schema):
    body: str = Field(min_length=1, max_length=20_000)


class NoteRead(ReadSchema):
    id: int
    contact_id: int
    body: str
    author_staff_id: int | None
    author_api_key_id: int | None
    created_at: dt.datetime


class MergeRequest(Schema):
    other_contact_id: int = Field(description="this contact is merged into the one in the path")
    reason: str = Field(default="merged by hand", max_length=200)


class MergeRead(ReadSchema):
    id: int
    survivor_id: int
    merged_id: int
    reason: str
    details: dict[str, Any]
    created_at: dt.datetime


class AttributeDefinitionCreate(Schema):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", examples=["exam_year"])
    label: str = Field(min_length=1, max_length=100, examples=["报考年份"])
    type: AttributeType
    choices: list[str] | None = Field(default=None, description="required for type 'choice'")

    @field_validator("choices")
    @classmethod
    def _distinct(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("choices must be distinct")
        return value


class AttributeDefinitionRead(ReadSchema):
    id: int
    key: str
    label: str
    type: AttributeType
    choices: list[str] | None


class TimelineEntry(ReadSchema):
    kind: str = Field(description="event | note | tag_change | merge | owner_change")
    at: dt.datetime
    id: int
    summary: str
    data: dict[str, Any]


class BulkOwnerChange(Schema):
    """Hand many contacts to one staff member (or to nobody with owner_id null)."""

    selection: ContactSelection
    owner_id: int | None = Field(description="the staff member who takes the contacts over; null: unowned")
    reason: str | None = Field(default=None, max_length=500, examples=["离职继承"])


class BulkOwnerResult(ReadSchema):
    matched: int
    changed: int
