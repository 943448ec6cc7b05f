"""Standard event types and the properties each carries.

Known properties are checked (an `order.paid` with amount "abc" is refused); extra properties are kept
as sent. Custom types (`shop.cart_added`) are allowed and stored as sent. Documented in
docs/en/events.md and docs/zh-CN/events.md; tests/test_docs.py checks every type here is documented.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field


class Properties(BaseModel):
    model_config = ConfigDict(extra="allow")


class ContactAdded(Properties):
    channel: str | None = Field(default=None, description="source channel, e.g. douyin")
    channel_code: str | None = Field(default=None, description="the channel code (活码) scanned")
    staff_id: int | None = Field(default=None, description="staff member the contact was added to")


class GroupMembership(Properties):
    group_id: str = Field(description="the chat group's id (WeCom chat_id or yours)")
    group_name: str | None = None


class ContentEngagement(Properties):
    content_id: str = Field(description="the content item's id")
    channel: str | None = Field(default=None, description="where it was seen: wecom, group, moments, h5...")


class ContentCommented(ContentEngagement):
    text: str | None = None


class MessageProps(Properties):
    text: str | None = Field(default=None, description="message text, used by keyword rules")
    staff_id: int | None = None
    group_id: str | None = None


class OrderProps(Properties):
    order_id: str = Field(description="the shop's order id")
    amount: float = Field(ge=0, description="amount paid (or refunded), in yuan")
    currency: str = Field(default="CNY", min_length=3, max_length=3)
    items: list[dict[str, object]] | None = None


class CouponRedeemed(Properties):
    coupon_id: str
    order_id: str | None = None


class ReferralInvited(Properties):
    invitee: dict[str, str] | None = Field(default=None, description="identities of the person invited")
    campaign_id: str | None = None


STANDARD_EVENT_TYPES: dict[str, tuple[type[Properties], str]] = {
    "contact.added": (ContactAdded, "the person was added as a contact (scan, search, referral)"),
    "contact.deleted_staff": (MessageProps, "the customer deleted the staff member (churn signal)"),
    "contact.deleted_by_staff": (MessageProps, "the staff member deleted the customer"),
    "contact.merged": (Properties, "siyu merged another profile into this one (recorded by siyu)"),
    "contact.opted_out": (Properties, "the person asked to receive nothing more (recorded by siyu)"),
    "contact.opted_in": (Properties, "the person's opt-out was lifted (recorded by siyu)"),
    "journey.entered": (Properties, "the person entered a journey (recorded by siyu)"),
    "journey.exited": (Properties, "the person left a journey: completed, goal reached or exited (recorded by siyu)"),
    "group.joined": (GroupMembership, "joined a chat group"),
    "group.left": (GroupMembership, "left a chat group"),
    "content.viewed": (ContentEngagement, "opened a piece of content"),
    "content.favorited": (ContentEngagement, "favourited / saved a piece of content"),
    "content.commented": (ContentCommented, "commented on a piece of content"),
    "content.shared": (ContentEngagement, "shared a piece of content"),
    "message.received": (MessageProps, "the contact sent a message to staff or a group"),
    "message.sent": (MessageProps, "staff or siyu sent the contact a message"),
    "order.paid": (OrderProps, "paid an order"),
    "order.refunded": (OrderProps, "an order was refunded"),
    "coupon.redeemed": (CouponRedeemed, "used a coupon"),
    "referral.invited": (ReferralInvited, "invited someone (fission)"),
    "live.attended": (Properties, "attended a live stream"),
    "form.submitted": (Properties, "submitted a form or questionnaire"),
}

# Types siyu records itself; integrators may not send them.
SYSTEM_EVENT_TYPES = frozenset(
    {"contact.merged", "contact.opted_out", "contact.opted_in", "journey.entered", "journey.exited"}
)

EVENT_TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
