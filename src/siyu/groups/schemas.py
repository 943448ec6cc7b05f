from __future__ import annotations

import datetime as dt

from pydantic import Field, field_validator, model_validator

from siyu.groups.models import (
    DEFAULT_CAPACITY,
    MAX_CAPACITY,
    GroupCodeStatus,
    GroupPurpose,
    GroupStatus,
)
from siyu.kit.schemas import ReadSchema, Schema

URL = r"^(https?://|weixin://)\S+$"


def _unique(ids: list[int] | None, field: str) -> list[int] | None:
    if ids is None:
        return None
    seen: dict[int, int] = {}
    for index, value in enumerate(ids):
        if value in seen:
            raise ValueError(f"{field}[{index}] repeats {value} of {field}[{seen[value]}]")
        seen[value] = index
    return ids


class GroupCreate(Schema):
    name: str = Field(min_length=1, max_length=100, examples=["考试冲刺 1 群"])
    purpose: GroupPurpose
    purpose_label: str | None = Field(default=None, max_length=50, description="required for purpose custom")
    owner_staff_id: int | None = Field(default=None, description="群主")
    helper_staff_ids: list[int] = Field(default_factory=list, description="群助理: staff helping the owner")
    capacity: int = Field(
        default=DEFAULT_CAPACITY,
        ge=1,
        le=MAX_CAPACITY,
        description="most members: WeCom groups hold 200, 500 for a certified corp",
    )
    status: GroupStatus = GroupStatus.active
    wecom_chat_id: str | None = Field(default=None, min_length=1, max_length=64)
    join_url: str | None = Field(default=None, max_length=1000, pattern=URL, description="join link or group QR")

    @field_validator("helper_staff_ids")
    @classmethod
    def _helpers(cls, value: list[int]) -> list[int]:
        return _unique(value, "helper_staff_ids") or []

    @model_validator(mode="after")
    def _label(self) -> GroupCreate:
        if self.purpose is GroupPurpose.custom and not self.purpose_label:
            raise ValueError("purpose_label: a custom purpose needs a label, e.g. 读书会")
        return self


class GroupUpdate(Schema):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    purpose: GroupPurpose | None = None
    purpose_label: str | None = Field(default=None, max_length=50)
    owner_staff_id: int | None = None
    helper_staff_ids: list[int] | None = Field(default=None, description="replaces the helpers when given")
    capacity: int | None = Field(default=None, ge=1, le=MAX_CAPACITY)
    status: GroupStatus | None = None
    wecom_chat_id: str | None = Field(default=None, min_length=1, max_length=64)
    join_url: str | None = Field(default=None, max_length=1000, pattern=URL)

    @field_validator("helper_staff_ids")
    @classmethod
    def _helpers(cls, value: list[int] | None) -> list[int] | None:
        return _unique(value, "helper_staff_ids")


class GroupRead(ReadSchema):
    id: int
    name: str
    purpose: GroupPurpose
    purpose_label: str | None
    status: GroupStatus
    owner_staff_id: int | None
    helper_staff_ids: list[int]
    capacity: int
    member_count: int
    wecom_chat_id: str | None
    join_url: str | None
    code_id: int | None
    from_template: bool
    created_at: dt.datetime


class MemberRead(ReadSchema):
    contact_id: int
    name: str | None
    joined_at: dt.datetime
    left_at: dt.datetime | None


class KpiTotals(ReadSchema):
    members: int = Field(description="contacts in the group at some time in the range")
    speakers: int = Field(description="members with a message.received carrying this group's id")
    activity: float | None = Field(description="speakers / members")
    viewers: int = Field(description="members with content.viewed carrying this group's id (or channel=group)")
    open_rate: float | None = Field(description="viewers / members")
    orders: int = Field(description="order.paid by viewers after their first view in the range")
    order_amount: float = Field(description="yuan, of those orders")
    buyers: int
    participants: int = Field(description="members who redeemed a coupon or took part in the group's activity")
    participation: float | None = Field(description="participants / members")
    questions: int = Field(description="member questions asked in the group")
    answered: int = Field(description="questions followed by a staff message in the group within 30 minutes")
    answer_rate: float | None = Field(description="answered / questions")


class KpiDay(ReadSchema):
    day: dt.date
    members: int
    speakers: int
    viewers: int
    participants: int
    questions: int
    answered: int


class GroupKpis(ReadSchema):
    group_id: int
    purpose: GroupPurpose
    headline: str = Field(description="the KPI that fits the purpose: open_rate, participation, answer_rate, activity")
    date_from: dt.date = Field(serialization_alias="from")
    date_to: dt.date = Field(serialization_alias="to")
    totals: KpiTotals
    per_day: list[KpiDay]


class TemplateIn(Schema):
    name_pattern: str = Field(
        min_length=1, max_length=90, examples=["考试冲刺 {n} 群"], description="{n} becomes the group's number"
    )
    purpose: GroupPurpose
    purpose_label: str | None = Field(default=None, max_length=50)
    owner_staff_id: int | None = None
    capacity: int = Field(default=DEFAULT_CAPACITY, ge=1, le=MAX_CAPACITY)
    next_number: int | None = Field(default=None, ge=1, description="the {n} of the next group; default: groups + 1")

    @field_validator("name_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        if "{n}" not in value:
            raise ValueError("must contain {n}, the group's number, e.g. 考试冲刺 {n} 群")
        return value

    @model_validator(mode="after")
    def _label(self) -> TemplateIn:
        if self.purpose is GroupPurpose.custom and not self.purpose_label:
            raise ValueError("purpose_label: a custom purpose needs a label")
        return self


class GroupCodeCreate(Schema):
    name: str = Field(min_length=1, max_length=100, examples=["考试冲刺群活码"])
    group_ids: list[int] = Field(default_factory=list, description="the groups, in the order they fill")
    threshold: int | None = Field(
        default=None, ge=1, le=MAX_CAPACITY, description="move on when a group has this many members (below capacity)"
    )
    template: TemplateIn | None = Field(default=None, description="opens a new group when every group is full")

    @field_validator("group_ids")
    @classmethod
    def _groups(cls, value: list[int]) -> list[int]:
        return _unique(value, "group_ids") or []

    @model_validator(mode="after")
    def _something(self) -> GroupCodeCreate:
        if not self.group_ids and self.template is None:
            raise ValueError("group_ids: give at least one group, or a template to open the first one from")
        return self


class GroupCodeUpdate(Schema):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    group_ids: list[int] | None = Field(default=None, description="replaces the code's groups (in order) when given")
    threshold: int | None = Field(default=None, ge=1, le=MAX_CAPACITY)
    template: TemplateIn | None = Field(default=None, description="null removes the template")

    @field_validator("group_ids")
    @classmethod
    def _groups(cls, value: list[int] | None) -> list[int] | None:
        return _unique(value, "group_ids")


class TemplateRead(ReadSchema):
    name_pattern: str
    purpose: GroupPurpose
    purpose_label: str | None
    owner_staff_id: int | None
    capacity: int
    next_number: int


class CodeGroupRead(ReadSchema):
    id: int
    name: str
    status: GroupStatus
    member_count: int
    capacity: int
    limit: int = Field(description="members at which the code moves on: min(capacity, threshold)")
    fill: float = Field(description="member_count / limit")
    full: bool
    current: bool = Field(description="the group the code shows now")


class GroupCodeRead(ReadSchema):
    id: int
    name: str
    status: GroupCodeStatus
    threshold: int | None
    template: TemplateRead | None
    groups: list[CodeGroupRead]
    current_group_id: int | None = Field(description="the group the public page shows; null when all are full")
    pending_group_ids: list[int] = Field(description="groups opened from the template staff still must create")
    slug: str
    link_path: str
    created_at: dt.datetime


class CodeDay(ReadSchema):
    day: dt.date
    scans: int
    joins: int = Field(description="members who joined the code's groups that day")


class GroupCodeStats(ReadSchema):
    code_id: int
    date_from: dt.date = Field(serialization_alias="from")
    date_to: dt.date = Field(serialization_alias="to")
    scans: int
    joins: int
    per_day: list[CodeDay]
    groups: list[CodeGroupRead]
