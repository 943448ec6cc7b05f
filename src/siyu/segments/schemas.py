from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from siyu.contacts.schemas import ContactRead
from siyu.kit.schemas import ReadSchema, Schema

RULE_DESCRIPTION = "a rule in the segment rule language (docs/en/segments.md)"


class SegmentCreate(Schema):
    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    rule: dict[str, Any] = Field(description=RULE_DESCRIPTION)


class SegmentUpdate(Schema):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    rule: dict[str, Any] | None = Field(default=None, description=RULE_DESCRIPTION)


class SegmentRead(ReadSchema):
    id: int
    name: str
    description: str | None
    rule: dict[str, Any]
    version: int
    member_count: int
    refreshed_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class SegmentPreviewRequest(Schema):
    rule: dict[str, Any] = Field(description=RULE_DESCRIPTION)
    sample_size: int = Field(default=20, ge=0, le=100)


class SegmentPreview(ReadSchema):
    count: int = Field(description="contacts the rule matches now (a consultant: among their own)")
    sample: list[ContactRead]


class SizeDay(ReadSchema):
    day: dt.date
    size: int
    entered: int
    exited: int


class RefreshRead(ReadSchema):
    entered: int
    exited: int
    member_count: int


class MemberIds(ReadSchema):
    items: list[int]
    next_cursor: str | None = None


class ExplanationLineRead(ReadSchema):
    depth: int
    text: str
    matched: bool


class ContactSegmentRead(ReadSchema):
    segment_id: int
    name: str
    entered_at: dt.datetime
    why: list[ExplanationLineRead]
