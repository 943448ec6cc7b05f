"""Request and response bodies of the content API, and the kind-specific `data` each kind accepts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from siyu.content.models import ContentKind, ContentStatus
from siyu.kit.schemas import ReadSchema, Schema

# --- kind-specific data ---------------------------------------------------------------------------


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _http_url(value: str) -> str:
    if not value.startswith(("https://", "http://")) or len(value) < 11:
        raise ValueError("must be an http(s) URL, e.g. https://example.cn/page")
    return value


class TextData(_Data):
    """article, case: the text is `body`; data may carry a cover and a summary."""

    cover_url: str | None = Field(default=None, max_length=2000)
    summary: str | None = Field(default=None, max_length=500)

    _cover = field_validator("cover_url")(lambda v: v if v is None else _http_url(v))


class ScriptData(_Data):
    question: str = Field(min_length=1, max_length=1000)
    answers: list[str] = Field(min_length=1, max_length=10)

    @field_validator("answers")
    @classmethod
    def _answers(cls, value: list[str]) -> list[str]:
        for index, answer in enumerate(value):
            if not answer.strip():
                raise ValueError(f"answer {index} is empty; every answer variant needs text")
            if len(answer) > 4000:
                raise ValueError(f"answer {index} is longer than 4000 characters")
        return [a.strip() for a in value]


class MaterialData(_Data):
    url: str = Field(max_length=2000)
    mime: str = Field(pattern=r"^[a-z]+/[A-Za-z0-9.+\-]+$", max_length=100)

    _url = field_validator("url")(_http_url)


class LinkData(_Data):
    url: str = Field(max_length=2000)

    _url = field_validator("url")(_http_url)


class MiniProgramData(_Data):
    url: str | None = Field(default=None, max_length=2000)
    appid: str | None = Field(default=None, pattern=r"^wx[0-9a-zA-Z]{8,30}$")
    path: str | None = Field(default=None, max_length=500)

    _url = field_validator("url")(lambda v: v if v is None else _http_url(v))

    @model_validator(mode="after")
    def _one_way(self) -> MiniProgramData:
        if self.url is None and (self.appid is None or self.path is None):
            raise ValueError('give either {"url"} or {"appid", "path"}')
        return self


DATA_SCHEMAS: dict[ContentKind, type[_Data]] = {
    ContentKind.article: TextData,
    ContentKind.case: TextData,
    ContentKind.script: ScriptData,
    ContentKind.material: MaterialData,
    ContentKind.product: LinkData,
    ContentKind.video: LinkData,
    ContentKind.mini_program: MiniProgramData,
}

# --- items -----------------------------------------------------------------------------------------


class ContentCreate(Schema):
    kind: ContentKind
    title: str = Field(min_length=1, max_length=200)
    body: str | None = Field(default=None, max_length=200_000)
    data: dict[str, Any] = Field(default_factory=dict, description="kind-specific, see docs/en/content.md")
    status: ContentStatus = ContentStatus.draft
    tag_ids: list[int] = Field(default_factory=list, max_length=100)


class ContentUpdate(Schema):
    """Only the fields sent change; each accepted PATCH is a new version. The kind cannot change."""

    title: str | None = Field(default=None, min_length=1, max_length=200)
    body: str | None = Field(default=None, max_length=200_000)
    data: dict[str, Any] | None = None
    status: ContentStatus | None = None
    tag_ids: list[int] | None = Field(default=None, max_length=100)


class ContentTagRead(ReadSchema):
    id: int
    group_id: int
    name: str


class ContentRead(ReadSchema):
    id: int
    kind: ContentKind
    title: str
    body: str | None
    data: dict[str, Any]
    status: ContentStatus
    version: int
    tags: list[ContentTagRead] = Field(default_factory=list)
    created_by_staff_id: int | None
    updated_by_staff_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime


class ContentVersionRead(ReadSchema):
    version: int
    title: str
    body: str | None
    data: dict[str, Any]
    status: ContentStatus
    staff_id: int | None
    api_key_id: int | None
    created_at: dt.datetime


# --- content tags ----------------------------------------------------------------------------------


class ContentTagGroupCreate(Schema):
    name: str = Field(min_length=1, max_length=100)


class ContentTagCreate(Schema):
    name: str = Field(min_length=1, max_length=100)


class ContentTagGroupRead(ReadSchema):
    id: int
    name: str
    tags: list[ContentTagRead] = Field(default_factory=list)


# --- pushes and links ------------------------------------------------------------------------------


class PushCreate(Schema):
    """Exactly one of `contact_ids`, `segment_id` (all its members now) or `group_id`."""

    contact_ids: list[int] | None = Field(default=None, min_length=1, max_length=10_000)
    segment_id: int | None = None
    group_id: int | None = Field(default=None, ge=1, description="the group (社群) pushed to")
    source: str = Field(
        default="manual",
        max_length=100,
        pattern=r"^[A-Za-z0-9_.:\-]+$",
        description='where the push comes from: "manual", "broadcast:<id>", "journey:<id>", ...',
    )
    channel: str = Field(default="wecom", max_length=50, pattern=r"^[A-Za-z0-9_.\-]+$")

    @model_validator(mode="after")
    def _one_target(self) -> PushCreate:
        given = [n for n in ("contact_ids", "segment_id", "group_id") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of contact_ids, segment_id or group_id")
        return self


class LinkRead(BaseModel):
    contact_id: int | None
    group_id: int | None
    token: str
    url: str


class PushRead(ReadSchema):
    id: int
    content_id: int
    content_version: int
    source: str
    channel: str
    group_id: int | None
    recipient_count: int
    staff_id: int | None
    api_key_id: int | None
    created_at: dt.datetime


class PushCreated(PushRead):
    links: list[LinkRead]


# --- portrait --------------------------------------------------------------------------------------


class PortraitTag(BaseModel):
    id: int
    group: str
    name: str


class PortraitRead(BaseModel):
    content_id: int
    segment_id: int | None
    tags: list[PortraitTag]
    pushes: int
    recipients: int
    views: int = Field(description="counted opens: content.viewed events, plus anonymous opens of group links")
    unique_viewers: int
    anonymous_group_views: int
    favorites: int
    comments: int
    shares: int
    converted: int = Field(description="viewers with an order.paid within 7 days after a view")
    conversion_rate: float | None = Field(description="converted / unique_viewers; null with no viewers")
    open_rate: float | None = Field(description="recipients who viewed / recipients; null with no recipients")
