from __future__ import annotations

import datetime as dt
import itertools
import re
from decimal import Decimal

from pydantic import Field, field_validator, model_validator

from siyu.channels.models import ChannelKind, CodeStatus, Rotation, TouchSource
from siyu.kit.schemas import ReadSchema, Schema

HOURS = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
# What the link page may ask for. wechat_id is a custom identity type (the person's WeChat ID).
LINK_IDENTITY_TYPES = ("phone", "douyin_open_id", "xiaohongshu_id", "wechat_id")


class CostIn(Schema):
    period_start: dt.date
    period_end: dt.date = Field(description="last day of the period, included")
    amount: Decimal = Field(ge=0, max_digits=14, decimal_places=2, description="in yuan")

    @model_validator(mode="after")
    def _order(self) -> CostIn:
        if self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        return self


def _no_overlap(costs: list[CostIn] | None) -> list[CostIn] | None:
    if not costs:
        return costs
    ordered = sorted(enumerate(costs), key=lambda pair: pair[1].period_start)
    for (i, a), (j, b) in itertools.pairwise(ordered):
        if b.period_start <= a.period_end:
            raise ValueError(f"costs[{j}] overlaps costs[{i}]: one period per cost row, no double counting")
    return costs


class ChannelCreate(Schema):
    kind: ChannelKind
    name: str = Field(min_length=1, max_length=100, examples=["抖音-直播间"])
    costs: list[CostIn] = Field(default_factory=list)

    _check_costs = field_validator("costs")(_no_overlap)


class ChannelUpdate(Schema):
    kind: ChannelKind | None = None
    name: str | None = Field(default=None, min_length=1, max_length=100)
    costs: list[CostIn] | None = Field(default=None, description="replaces every cost row when given")

    _check_costs = field_validator("costs")(_no_overlap)


class CostRead(ReadSchema):
    period_start: dt.date
    period_end: dt.date
    amount: float


class ChannelRead(ReadSchema):
    id: int
    kind: ChannelKind
    name: str
    costs: list[CostRead]
    created_at: dt.datetime


class ChannelStats(ReadSchema):
    channel_id: int
    date_from: dt.date = Field(serialization_alias="from")
    date_to: dt.date = Field(serialization_alias="to")
    contacts_acquired: int = Field(description="contacts whose first touch was through this channel in the range")
    touches: int = Field(description="every add through this channel's codes in the range, first or not")
    cost: float = Field(description="yuan; each cost row prorated by the days of its period inside the range")
    cost_per_contact: float | None = Field(description="cost / contacts_acquired; null without contacts")


class HoursIn(Schema):
    start: str = Field(examples=["09:00"], description="HH:MM, workspace time zone")
    end: str = Field(examples=["21:00"], description="HH:MM (24:00 allowed); before start spans midnight")

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not HOURS.match(value):
            raise ValueError(f"{value!r} is not a time of day HH:MM between 00:00 and 24:00")
        return value

    @model_validator(mode="after")
    def _span(self) -> HoursIn:
        if self.start == self.end:
            raise ValueError("start equals end; omit hours for always online")
        if self.start == "24:00":
            raise ValueError("start must be before 24:00")
        return self


class PoolEntryIn(Schema):
    staff_id: int
    weight: int = Field(default=1, gt=0, le=1000, description="share of adds under weighted rotation")
    daily_cap: int | None = Field(default=None, ge=0, description="most adds per day through this code; null: none")
    hours: HoursIn | None = Field(default=None, description="online hours; null: always online")


def _unique_staff(pool: list[PoolEntryIn] | None) -> list[PoolEntryIn] | None:
    if pool is None:
        return None
    seen: dict[int, int] = {}
    for index, entry in enumerate(pool):
        if entry.staff_id in seen:
            raise ValueError(f"pool[{index}] repeats staff {entry.staff_id} of pool[{seen[entry.staff_id]}]")
        seen[entry.staff_id] = index
    return pool


class CodeCreate(Schema):
    channel_id: int
    name: str = Field(min_length=1, max_length=100, examples=["直播间福利码"])
    rotation: Rotation = Rotation.round_robin
    pool: list[PoolEntryIn] = Field(min_length=1, description="staff who take the adds, in order")
    backup_staff_id: int | None = Field(default=None, description="takes adds when every pool member is capped/offline")
    tag_ids: list[int] = Field(default_factory=list, description="tags put on every contact added")
    identity_type: str = Field(default="phone", description=f"what the link page asks for: {LINK_IDENTITY_TYPES}")
    welcome_text: str | None = Field(default=None, max_length=4000)
    welcome_link_title: str | None = Field(default=None, max_length=200)
    welcome_link_url: str | None = Field(default=None, max_length=1000, pattern=r"^https?://\S+$")

    _check_pool = field_validator("pool")(_unique_staff)

    @field_validator("identity_type")
    @classmethod
    def _identity(cls, value: str) -> str:
        if value not in LINK_IDENTITY_TYPES:
            raise ValueError(f"must be one of {', '.join(LINK_IDENTITY_TYPES)}")
        return value


class CodeUpdate(Schema):
    channel_id: int | None = None
    name: str | None = Field(default=None, min_length=1, max_length=100)
    rotation: Rotation | None = None
    pool: list[PoolEntryIn] | None = Field(default=None, min_length=1, description="replaces the pool when given")
    backup_staff_id: int | None = None
    tag_ids: list[int] | None = Field(default=None, description="replaces the code's tags when given")
    identity_type: str | None = None
    welcome_text: str | None = Field(default=None, max_length=4000)
    welcome_link_title: str | None = Field(default=None, max_length=200)
    welcome_link_url: str | None = Field(default=None, max_length=1000, pattern=r"^https?://\S+$")

    _check_pool = field_validator("pool")(_unique_staff)

    @field_validator("identity_type")
    @classmethod
    def _identity(cls, value: str | None) -> str | None:
        if value is not None and value not in LINK_IDENTITY_TYPES:
            raise ValueError(f"must be one of {', '.join(LINK_IDENTITY_TYPES)}")
        return value


class HoursRead(ReadSchema):
    start: str
    end: str


class PoolEntryRead(ReadSchema):
    staff_id: int
    staff_name: str
    weight: int
    daily_cap: int | None
    hours: HoursRead | None


class CodeRead(ReadSchema):
    id: int
    channel_id: int
    name: str
    status: CodeStatus
    rotation: Rotation
    pool: list[PoolEntryRead]
    backup_staff_id: int | None
    tag_ids: list[int]
    identity_type: str
    welcome_text: str | None
    welcome_link_title: str | None
    welcome_link_url: str | None
    slug: str
    link_path: str = Field(description="the public link page; prefix it with this server's address")
    created_at: dt.datetime


class StaffCount(ReadSchema):
    staff_id: int
    staff_name: str
    adds: int


class DayCount(ReadSchema):
    day: dt.date
    scans: int
    adds: int


class CodeStats(ReadSchema):
    code_id: int
    date_from: dt.date = Field(serialization_alias="from")
    date_to: dt.date = Field(serialization_alias="to")
    scans: int = Field(description="link page views")
    adds: int
    per_staff: list[StaffCount]
    per_day: list[DayCount]


class TouchRead(ReadSchema):
    channel_id: int
    code_id: int
    staff_id: int | None
    source: TouchSource
    first: bool
    at: dt.datetime


class ContactTouches(ReadSchema):
    contact_id: int
    first_touch: TouchRead | None
    last_touch: TouchRead | None
    touches: list[TouchRead]
