from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field

from siyu.kit.schemas import ReadSchema, Schema


class EventIn(Schema):
    id: str = Field(min_length=1, max_length=128, description="your unique id; a replay with the same id adds nothing")
    type: str = Field(min_length=3, max_length=64, examples=["order.paid"])
    contact: dict[str, Any] = Field(
        description='identities naming the person, e.g. {"phone": "13800138000"}; or {"id": 42}',
        examples=[{"phone": "13800138000", "wecom_external_userid": "wmABC"}],
    )
    timestamp: dt.datetime | None = Field(
        default=None,
        description="when it happened (ISO 8601). Without a zone it is read in the workspace's time zone; "
        "omitted means now",
    )
    properties: dict[str, Any] = Field(default_factory=dict)


class EventBatch(Schema):
    events: list[EventIn]


class IngestResult(ReadSchema):
    accepted: int = Field(description="events stored by this call")
    duplicates: int = Field(description="events whose id was already stored: skipped")
    contacts_created: int
    contacts_merged: int
    first_seq: int | None
    last_seq: int | None


class IngestBatchRead(ReadSchema):
    """A received batch: `pending` until a worker stores it, then `stored` (or `failed`, with the reason)."""

    batch_id: str = Field(description="look the batch up with GET /api/v1/events/batches/{batch_id}")
    status: Literal["pending", "stored", "failed"]
    event_count: int = Field(description="events in the batch")
    received_at: dt.datetime
    stored_at: dt.datetime | None = None
    accepted: int | None = Field(default=None, description="events stored (not known while pending)")
    duplicates: int | None = Field(default=None, description="events whose id was already stored: skipped")
    contacts_created: int | None = None
    contacts_merged: int | None = None
    first_seq: int | None = None
    last_seq: int | None = None
    error: str | None = Field(default=None, description="why a failed batch stored nothing")


class InboxBacklog(ReadSchema):
    """Received batches not yet stored. It should stay near zero; if it only grows, no worker is running."""

    batches: int
    events: int
    oldest_received_at: dt.datetime | None = Field(description="when the oldest waiting batch was received")


class EventRead(ReadSchema):
    seq: int
    id: str = Field(validation_alias="event_id")
    type: str
    contact_id: int
    occurred_at: dt.datetime
    received_at: dt.datetime
    properties: dict[str, Any]
