from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from siyu.delivery.models import Channel
from siyu.journeys.models import EnrolmentStatus, JourneyStatus
from siyu.kit.schemas import ReadSchema, Schema

DEFINITION_HELP = "the journey definition (docs/en/journeys.md): trigger, entry, goal, steps"


class JourneyCreate(Schema):
    name: str = Field(min_length=1, max_length=100, examples=["新客户欢迎 SOP"])
    description: str | None = Field(default=None, max_length=500)
    definition: dict[str, Any] = Field(description=DEFINITION_HELP)


class JourneyUpdate(Schema):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=500)
    definition: dict[str, Any] | None = Field(default=None, description="replaces the draft; publish to use it")


class FromTemplate(Schema):
    template: str = Field(description="a template key from GET /api/v1/journeys/templates", examples=["onboarding"])
    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=500)
    channel: Channel = Field(default=Channel.sandbox, description="the channel of every send step")


class ValidateRequest(Schema):
    definition: dict[str, Any]


class ValidateRead(ReadSchema):
    valid: bool
    trigger: str
    steps: list[str]


class JourneyCounts(ReadSchema):
    entered: int = 0
    active: int = 0
    goal: int = 0


class JourneyRead(ReadSchema):
    id: int
    name: str
    description: str | None
    status: JourneyStatus
    version: int | None = Field(description="the published version new enrolments enter; null: never published")
    trigger_kind: str | None
    draft: dict[str, Any] = Field(description="the definition being edited")
    published: bool = Field(description="the draft is the published version")
    next_fire_at: dt.datetime | None
    activated_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    counts: JourneyCounts


class VersionRead(ReadSchema):
    version: int
    definition: dict[str, Any]
    published_by_staff_id: int | None
    created_at: dt.datetime


class EnrolmentRead(ReadSchema):
    id: int
    journey_id: int
    journey_name: str | None = None
    contact_id: int
    version_id: int
    status: EnrolmentStatus
    step: str
    waiting: bool
    due_at: dt.datetime | None
    wait_event: str | None
    arm: str | None
    trigger: str | None
    entered_at: dt.datetime
    ended_at: dt.datetime | None
    exit_reason: str | None
    goal_at: dt.datetime | None


class EnrolmentPage(ReadSchema):
    items: list[EnrolmentRead]
    next_cursor: str | None = None


class EnrolRequest(Schema):
    contact_ids: list[int] = Field(min_length=1, max_length=1000)


class Enrolled(ReadSchema):
    contact_id: int
    enrolment_id: int


class Refused(ReadSchema):
    contact_id: int
    reason: str


class EnrolResultRead(ReadSchema):
    enrolled: list[Enrolled]
    refused: list[Refused]


class RateRead(ReadSchema):
    n: int
    converted: int
    rate: float | None
    low: float | None = Field(description="95 % Wilson interval")
    high: float | None


class LiftRead(ReadSchema):
    difference: float | None = Field(description="treated rate minus holdout rate")
    low: float | None = Field(description="95 % Newcombe hybrid score interval")
    high: float | None
    significant: bool


class ConversionRead(ReadSchema):
    goal: str | None
    overall: RateRead
    treated: RateRead
    holdout: RateRead
    lift: LiftRead
    has_holdout: bool


class StepNumbersRead(ReadSchema):
    step: str
    type: str | None
    name: str | None
    waiting: int
    arrived: int
    passed: int
    exited: int
    goal: int
    sent: int
    held: int
    skipped: int
    failed: int
    withheld: int


class NumbersRead(ReadSchema):
    entered: int
    active: int
    completed: int
    exited: int
    steps: list[StepNumbersRead]
    conversion: ConversionRead


class TemplateRead(ReadSchema):
    key: str
    name: str
    name_zh: str
    description: str
    definition: dict[str, Any]
