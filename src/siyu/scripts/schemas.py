"""Request and response bodies of /api/v1/scripts."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from siyu.kit.schemas import ReadSchema, Schema


class ScriptHit(ReadSchema):
    id: int
    title: str
    question: str
    answers: list[str]
    score: float | None = Field(description="BM25 score; null when the query was empty (most used scripts)")
    matched_terms: list[str] = Field(description="the query's words (normalised) found in the script: why it ranks")
    uses: int
    conversion_rate: float | None = Field(description="converted contacts / contacts it was used with; null if none")


class ScriptSearchResult(ReadSchema):
    query: str
    items: list[ScriptHit]


class ScriptUseCreate(Schema):
    answer_index: int = Field(default=0, ge=0, description="which answer variant was used (0-based)")
    contact_id: int | None = Field(default=None, description="the contact it was used with, if any")


class ScriptUseRead(ReadSchema):
    id: int
    content_id: int
    answer_index: int
    contact_id: int | None
    staff_id: int | None
    api_key_id: int | None
    used_at: dt.datetime


class StaffUsageRead(ReadSchema):
    staff_id: int | None
    name: str | None
    uses: int


class ScriptStats(ReadSchema):
    script_id: int
    uses: int
    last_used_at: dt.datetime | None
    uses_by_answer: dict[int, int]
    by_staff: list[StaffUsageRead]
    contacts: int = Field(description="distinct contacts it was used with")
    converted: int = Field(description="of those, contacts with an order.paid within 7 days after a use")
    conversion_rate: float | None
    conversion_window_days: int
