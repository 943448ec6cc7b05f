"""API shapes of /api/v1/delivery."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, model_validator

from siyu.delivery.models import Channel, DeliveryStatus, QuietHoursPolicy
from siyu.delivery.policy import DeliveryConfig
from siyu.kit.schemas import ReadSchema, Schema


class SettingsRead(ReadSchema):
    config: DeliveryConfig
    webhook_secret_hint: str | None = Field(
        description="the end of the signing secret; the secret itself is shown once"
    )
    webhook_secret: str | None = Field(
        default=None, description="only in the answer that made a new secret: copy it now, it is not shown again"
    )
    updated_at: dt.datetime | None = None


class WebhookSecretRead(ReadSchema):
    webhook_secret: str = Field(description="the new signing secret, shown this once")
    webhook_secret_hint: str


class StaffAccountRead(ReadSchema):
    staff_id: int
    name: str
    wecom_userid: str | None
    started_on: dt.date = Field(description="first day of the account (warm-up counts from it)")
    send_limit: int | None = Field(description="full daily send limit (null: none)")
    add_limit: int | None = Field(description="full daily add limit (null: none)")
    warmup_days: int
    custom: bool = Field(description="true when this account overrides the workspace's defaults")
    sends_today: int
    send_limit_today: int | None = Field(description="the limit today, warm-up applied")
    add_limit_today: int | None
    adds_left_today: int | None


class StaffAccountUpdate(Schema):
    started_on: dt.date | None = Field(default=None, description="null: the day the staff member was created")
    send_limit: int | None = Field(default=None, ge=0, le=100_000, description="null: the workspace's default")
    add_limit: int | None = Field(default=None, ge=0, le=100_000, description="null: the workspace's default")
    warmup_days: int | None = Field(default=None, ge=0, le=60, description="null: the workspace's default")


class DeliveryRead(ReadSchema):
    id: int
    source: str
    step: str
    contact_id: int
    entry: int
    channel: Channel
    status: DeliveryStatus
    reason: str | None = Field(description="why it was skipped, held or failed (a code)")
    reason_text: str | None = Field(description="the reason in words")
    detail: str | None = Field(description="the numbers behind the reason, or the channel's answer")
    retry_at: dt.datetime | None
    text: str | None
    content_id: int | None
    link: str | None = Field(description="the contact's tracked link (/r/...) when content was sent")
    staff_id: int | None
    welfare: bool
    service: bool = Field(description="a service message the contact asked for: caps did not stop it")
    quiet_hours: QuietHoursPolicy
    attempts: int
    external_id: str | None = Field(description="Message-ID, WeCom msgid or the webhook's HTTP status")
    created_at: dt.datetime
    updated_at: dt.datetime
    sent_at: dt.datetime | None


class SendCreate(Schema):
    """One message to one contact from an integrator (source "api"). `step` is your idempotency key:
    posting the same (contact_id, step, entry) again returns the first delivery and sends nothing."""

    contact_id: int
    step: str = Field(min_length=1, max_length=100, examples=["order-1234-shipped"])
    entry: int = Field(default=0, ge=0)
    channel: Channel
    text: str | None = Field(default=None, max_length=4000)
    content_id: int | None = Field(default=None, description="a published content item: the message carries its link")
    staff_id: int | None = Field(default=None, description="the sending staff member (WeCom); default the owner")
    welfare: bool = False
    service: bool = Field(
        default=False,
        description="a service message the contact asked for (an order notice, a reminder of what they signed "
        "up to): frequency caps and welfare days do not stop it, though it counts in them; opt-out and quiet "
        "hours still apply",
    )
    quiet_hours: QuietHoursPolicy = QuietHoursPolicy.hold
    webhook_url: str | None = Field(default=None, max_length=1000, pattern=r"^https?://\S+$")
    payload: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _something(self) -> SendCreate:
        if self.text is None and self.content_id is None and self.payload is None:
            raise ValueError("text: a delivery needs text, content_id or a payload")
        return self


class OptOutRead(ReadSchema):
    contact_id: int
    source: str = Field(description="message (an unsubscribe reply), api, console, merge")
    detail: str | None
    created_at: dt.datetime


class OptOutCreate(Schema):
    contact_id: int
    note: str | None = Field(default=None, max_length=200)


class TagAudience(Schema):
    ids: list[int] = Field(min_length=1, max_length=100)
    match: Literal["any", "all"] = "any"


class PlanRequest(Schema):
    """The audience: exactly one of segment_id, contact_ids, tags."""

    segment_id: int | None = None
    contact_ids: list[int] | None = Field(default=None, max_length=100_000)
    tags: TagAudience | None = None
    channel: Channel
    welfare: bool = False
    at: dt.datetime | None = Field(default=None, description="when the send would happen; default now")
    staff_id: int | None = Field(default=None, description="WeCom: the one sending staff account; default owners")

    @model_validator(mode="after")
    def _one_audience(self) -> PlanRequest:
        given = [n for n in ("segment_id", "contact_ids", "tags") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("segment_id: give exactly one audience: segment_id, contact_ids or tags")
        return self


class PlanRead(ReadSchema):
    total: int
    eligible: int
    excluded: dict[str, int] = Field(description="reason code -> contacts, in check order")
    excluded_text: dict[str, str] = Field(description="reason code -> the reason in words")
    at: dt.datetime
