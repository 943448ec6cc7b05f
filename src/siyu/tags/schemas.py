from __future__ import annotations

import datetime as dt

from pydantic import Field, model_validator

from siyu.kit.schemas import ReadSchema, Schema
from siyu.tags.models import TagAction, TagSource


class TagGroupCreate(Schema):
    name: str = Field(min_length=1, max_length=100, examples=["意向等级"])
    exclusive: bool = Field(default=False, description="a contact holds at most one tag of this group")


class TagGroupUpdate(Schema):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    exclusive: bool | None = None


class TagGroupRead(ReadSchema):
    id: int
    name: str
    exclusive: bool
    created_at: dt.datetime


class TagCreate(Schema):
    group_id: int
    name: str = Field(min_length=1, max_length=100, examples=["A级-强意向"])


class TagUpdate(Schema):
    name: str | None = Field(default=None, min_length=1, max_length=100)


class TagRead(ReadSchema):
    id: int
    group_id: int
    name: str
    created_at: dt.datetime


class ContactTagsChange(Schema):
    add: list[int] = Field(default_factory=list, description="tag ids to add")
    remove: list[int] = Field(default_factory=list, description="tag ids to remove")
    reason: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _something(self) -> ContactTagsChange:
        if not self.add and not self.remove:
            raise ValueError("name at least one tag id in add or remove")
        if set(self.add) & set(self.remove):
            raise ValueError("a tag cannot be both added and removed")
        return self


class ContactSelection(Schema):
    """Which contacts a bulk action applies to: an id list, or every contact matching a filter."""

    contact_ids: list[int] | None = Field(default=None, max_length=10_000)
    filter: dict[str, str | list[str]] | None = Field(
        default=None, description='the same filters GET /api/v1/contacts takes, e.g. {"tag": ["3"]}'
    )

    @model_validator(mode="after")
    def _one(self) -> ContactSelection:
        if (self.contact_ids is None) == (self.filter is None):
            raise ValueError("give exactly one of contact_ids or filter")
        return self


class BulkTagsChange(ContactTagsChange):
    selection: ContactSelection


class BulkTagsResult(ReadSchema):
    matched: int
    added: int
    removed: int


class TagChangeRead(ReadSchema):
    id: int
    contact_id: int
    tag_id: int | None
    tag_name: str
    action: TagAction
    source: TagSource
    actor_staff_id: int | None
    actor_api_key_id: int | None
    reason: str | None
    created_at: dt.datetime


class TagMerge(Schema):
    into_tag_id: int = Field(description="the tag that takes over this tag's contacts; this tag is then deleted")


class TagMergeResult(ReadSchema):
    into: TagRead
    contacts: int = Field(description="contacts that held the merged tag")
    added: int = Field(description="of them, how many did not already hold the target tag")
