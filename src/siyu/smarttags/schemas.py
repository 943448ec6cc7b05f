from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from siyu.kit.schemas import ReadSchema, Schema
from siyu.smarttags.models import SmartTagKind

MAX_KEYWORDS = 50
MAX_KEYWORD_LENGTH = 50


class SmartTagCreate(Schema):
    name: str = Field(min_length=1, max_length=100, examples=["问价"])
    tag_id: int = Field(description="the tag this smart tag puts on")
    kind: SmartTagKind = Field(description="rule: a segment rule; keywords: words in received messages")
    rule: dict[str, Any] | None = Field(
        default=None,
        description="kind rule: a segment rule (docs/en/segments.md)",
        examples=[{"event": "content.viewed", "count": {"op": "gte", "value": 2}, "within_last_days": 7}],
    )
    keywords: list[str] | None = Field(
        default=None,
        description=f"kind keywords: 1 to {MAX_KEYWORDS} words or phrases of at most {MAX_KEYWORD_LENGTH} characters",
        examples=[["问价格", "多少钱", "价格", "怎么收费", "how much"]],
    )
    remove_when_unmatched: bool = Field(
        default=False, description="kind rule: take the tag off holders who no longer match"
    )
    enabled: bool = True


class SmartTagUpdate(Schema):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    tag_id: int | None = None
    rule: dict[str, Any] | None = None
    keywords: list[str] | None = None
    remove_when_unmatched: bool | None = None
    enabled: bool | None = None


class SmartTagRead(ReadSchema):
    id: int
    name: str
    tag_id: int
    kind: SmartTagKind
    rule: dict[str, Any] | None
    keywords: list[str] | None
    remove_when_unmatched: bool
    enabled: bool
    created_by_staff_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    last_run_at: dt.datetime | None = Field(description="the last run over the whole workspace (rule kind)")
    last_change_at: dt.datetime | None = Field(description="the last time it added or removed its tag")
    added_total: int = Field(description="tag additions it has made, all time")
    removed_total: int = Field(description="tag removals it has made, all time")
    last_error: str | None = Field(description="why the last run skipped it; null when it ran")


class SmartTagRunResult(ReadSchema):
    smart_tag_id: int
    added: int = Field(description="contacts that got the tag")
    removed: int = Field(description="contacts that lost it (remove_when_unmatched)")


class KeywordTest(Schema):
    text: str = Field(min_length=1, max_length=5000, examples=["老师，这个课程多少钱？"])
    keywords: list[str] | None = Field(
        default=None, description="also try these keywords, not saved (e.g. while writing a rule)"
    )


class KeywordRuleHit(ReadSchema):
    smart_tag_id: int
    name: str
    tag_id: int
    enabled: bool
    keywords: list[str] = Field(description="the rule's keywords found in the text")


class KeywordTestResult(ReadSchema):
    tokens: list[str] = Field(description="jieba's words of the text, after normalisation")
    rules: list[KeywordRuleHit] = Field(description="saved keyword rules the text triggers (disabled ones too)")
    keywords: list[str] = Field(description="of the keywords sent with the request, those the text contains")
