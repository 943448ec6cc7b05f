"""Request and response bodies of /api/v1/broadcasts."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, field_validator, model_validator

from siyu.broadcasts.models import AudienceKind, BroadcastStatus, WeComTaskStatus
from siyu.kit.schemas import ReadSchema, Schema

ChannelName = Literal["sandbox", "webhook", "email", "wecom"]
TEXT_MAX = 4000  # WeCom: a broadcast's text is at most 4,000 bytes; the same bound for every channel


def _unique(ids: list[int], field: str) -> list[int]:
    seen: dict[int, int] = {}
    for index, value in enumerate(ids):
        if value in seen:
            raise ValueError(f"{field}[{index}] repeats {value} of {field}[{seen[value]}]")
        seen[value] = index
    return ids


class AudienceIn(Schema):
    """Exactly one of: a segment, a tag filter (tag_ids + match), chat groups."""

    segment_id: int | None = Field(default=None, description="the members of this segment")
    tag_ids: list[int] | None = Field(default=None, min_length=1, max_length=50, description="contacts by tags")
    match: Literal["any", "all", "none"] = Field(
        default="any", description="with tag_ids: any of the tags, all of them, or none of them"
    )
    group_ids: list[int] | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="chat groups: through WeCom a group message in each group (by its owner); "
        "through other channels a message to each current member",
    )

    @field_validator("tag_ids")
    @classmethod
    def _tags(cls, value: list[int] | None) -> list[int] | None:
        return None if value is None else _unique(value, "tag_ids")

    @field_validator("group_ids")
    @classmethod
    def _groups(cls, value: list[int] | None) -> list[int] | None:
        return None if value is None else _unique(value, "group_ids")

    @model_validator(mode="after")
    def _one(self) -> AudienceIn:
        given = [n for n in ("segment_id", "tag_ids", "group_ids") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of segment_id, tag_ids, group_ids")
        return self

    @property
    def kind(self) -> AudienceKind:
        if self.segment_id is not None:
            return AudienceKind.segment
        return AudienceKind.tags if self.tag_ids is not None else AudienceKind.groups


class MessageIn(Schema):
    audience: AudienceIn
    content_id: int | None = Field(default=None, description="a published content item")
    text: str | None = Field(default=None, min_length=1, max_length=TEXT_MAX)
    channel: ChannelName = "sandbox"
    welfare: bool = Field(default=False, description="welfare-type content (福利): counts against the monthly days")
    quiet_hours: Literal["hold", "skip"] = Field(
        default="hold", description="in a contact's quiet hours: hold until they end, or skip"
    )
    webhook_url: str | None = Field(default=None, max_length=1000, pattern=r"^https?://\S+$")
    run_at: dt.datetime | None = Field(default=None, description="start then; leave out to start now")


class BroadcastPreviewIn(MessageIn):
    """What would be planned; nothing is saved."""

    name: str | None = Field(default=None, max_length=100)


class BroadcastCreate(MessageIn):
    name: str = Field(min_length=1, max_length=100, examples=["双十一福利"])


class PlanRead(ReadSchema):
    unit: Literal["contacts", "groups"] = Field(
        description="groups for a WeCom group broadcast (one group message per group), contacts otherwise"
    )
    total: int = Field(description="in the audience")
    eligible: int = Field(description="reachable after opt-outs, addresses, quiet hours and budgets")
    excluded: dict[str, int] = Field(description="reason -> how many are left out for it")
    at: dt.datetime = Field(description="the moment planned for (run_at, or now)")


class ProgressRead(ReadSchema):
    total: int = Field(description="recipients frozen at the start")
    processed: int
    sent: int
    queued: int = Field(description="accepted, handed to the channel (webhook, e-mail, WeCom)")
    held: int = Field(description="held for quiet hours; delivery sends them when they end")
    skipped: int
    failed: int
    reasons: dict[str, int] = Field(description="held, skipped or failed, by reason")


class AudienceRead(ReadSchema):
    kind: AudienceKind
    segment_id: int | None
    tag_ids: list[int] | None
    match: str | None
    group_ids: list[int] | None


class BroadcastRead(ReadSchema):
    id: int
    name: str
    status: BroadcastStatus
    audience: AudienceRead
    content_id: int | None
    text: str | None
    channel: str
    welfare: bool
    quiet_hours: str
    webhook_url: str | None
    run_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    cancelled_at: dt.datetime | None
    created_at: dt.datetime
    created_by_staff_id: int | None
    error: str | None
    plan: PlanRead | None
    progress: ProgressRead
    wecom: WeComSummary | None = Field(description="WeCom broadcasts: tasks per staff member and confirmations")


class WeComSummary(ReadSchema):
    tasks: int
    confirmed: int
    waiting: int = Field(description="created in WeCom, not confirmed by the staff member yet")
    failed: int


class StaffTaskRead(ReadSchema):
    staff_id: int
    staff_name: str | None
    part: int
    chat_type: str
    status: WeComTaskStatus
    target_count: int
    msgid: str | None
    handed_at: dt.datetime | None
    confirmed_at: dt.datetime | None
    checked_at: dt.datetime | None
    reminded_at: dt.datetime | None
    sent_count: int
    failed_count: int
    error: str | None


class ReminderRead(ReadSchema):
    staff_id: int
    task_id: int = Field(description="the staff task (待办) reminding them")


BroadcastRead.model_rebuild()
