from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class WeComConfigIn(BaseModel):
    """PUT /wecom/config. Secret, token and encoding_aes_key may be left out to keep the stored ones."""

    model_config = ConfigDict(extra="forbid")

    corp_id: str = Field(min_length=1, max_length=64, description="企业ID (My Company → Company Info)")
    secret: str | None = Field(
        default=None, min_length=1, max_length=200, description="secret of the Customer Contact app; never returned"
    )
    token: str | None = Field(default=None, min_length=1, max_length=64, description="callback Token")
    encoding_aes_key: str | None = Field(
        default=None, min_length=43, max_length=43, description="callback EncodingAESKey (43 characters)"
    )
    agent_id: int | None = Field(
        default=None,
        description="AgentId of the self-built app whose secret this is: set it to send staff their "
        "reminders as app messages (应用消息)",
    )


class WeComConfigRead(BaseModel):
    corp_id: str
    agent_id: int | None
    secret_hint: str = Field(description="the secret masked: only its last 4 characters")
    callback_path: str = Field(description="the path to enter as the callback URL, after your siyu host")
    updated_at: dt.datetime


class WeComCallbackRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    received_at: dt.datetime
    kind: str
    outcome: str
    detail: str | None
    contact_id: int | None
    code_id: int | None
    welcome: str | None
    welcome_detail: str | None


class AppMessageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    staff_id: int | None
    userid: str | None = Field(description="the staff member's WeCom userid when it was queued")
    kind: str = Field(description="task, digest, escalation, hand_over")
    title: str
    description: str
    url: str | None = Field(description="what the text card opens; null: sent as plain text")
    status: str = Field(description="queued, sent, failed or skipped")
    reason: str | None = Field(description="why it failed or was skipped")
    detail: str | None
    attempts: int
    created_at: dt.datetime
    sent_at: dt.datetime | None
    msgid: str | None
