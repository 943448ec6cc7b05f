"""A workspace's delivery policy: budgets, quiet hours, welfare days, opt-out words, staff account limits.

Stored as JSON on `delivery_settings.config`; anything left out takes the default below. The defaults
and where they come from are in docs/en/delivery.md ("Defaults").
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from functools import lru_cache
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.delivery.models import DeliverySettings
from siyu.errors import ValidationFailed
from siyu.kit.schemas import Schema

HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")

# Whole-message replies that opt a contact out (after trimming, full-width to half-width, lower case).
DEFAULT_OPT_OUT_WORDS = ["退订", "td", "t", "退", "unsubscribe", "stop", "取消订阅", "拒收"]


class Caps(Schema):
    """Most messages one contact receives, across every channel, per local day / ISO week / month.
    None: no cap. Defaults follow WeCom's customer broadcast limits (1 a day from one member, 4 a month
    from the enterprise)."""

    day: int | None = Field(default=1, ge=0, le=1000)
    week: int | None = Field(default=3, ge=0, le=1000)
    month: int | None = Field(default=4, ge=0, le=10000)


class QuietHours(Schema):
    """Local times "HH:MM" in the contact's zone; start > end spans midnight (21:00-08:00)."""

    start: str = Field(default="21:00", pattern=HHMM.pattern)
    end: str = Field(default="08:00", pattern=HHMM.pattern)

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet_hours: start and end are the same time; set quiet_hours to null for none")
        return self

    def times(self) -> tuple[dt.time, dt.time]:
        return dt.time.fromisoformat(self.start), dt.time.fromisoformat(self.end)


class StaffLimits(Schema):
    """Per staff account and local day (workspace time). A new account ramps from start_ratio of the
    limit on its first day to the full limit after warmup_days."""

    send_limit: int | None = Field(default=200, ge=0, le=100_000, description="WeCom messages a day; null: none")
    # Off by default: adds through channel codes are people adding the staff member (passive), which
    # WeCom tolerates far better than staff actively adding people; set it to protect young accounts.
    add_limit: int | None = Field(
        default=None, ge=0, le=100_000, description="customers added a day through channel codes; null: none"
    )
    warmup_days: int = Field(default=20, ge=0, le=60, description="0: no warm-up; the issue asks 15 to 30")
    start_ratio: float = Field(default=0.2, gt=0, le=1, description="share of the limit on the account's first day")


class SandboxSimulation(Schema):
    """Simulated engagement of sandbox messages (demo): decided per delivery by the seed, so reruns agree."""

    open_rate: float = Field(default=0.0, ge=0, le=1)
    click_rate: float = Field(default=0.0, ge=0, le=1, description="share of opened messages whose link is clicked")
    seed: int = Field(default=0, ge=0)
    delay_minutes: int = Field(default=30, ge=0, le=10_000, description="mean delay before the open / click")


class DeliveryConfig(Schema):
    caps: Caps = Field(default_factory=Caps)
    quiet_hours: QuietHours | None = Field(default_factory=QuietHours)
    welfare_days_per_month: int | None = Field(default=4, ge=0, le=31)
    opt_out_words: list[str] = Field(default_factory=lambda: list(DEFAULT_OPT_OUT_WORDS), max_length=100)
    staff: StaffLimits = Field(default_factory=StaffLimits)
    webhook_url: str | None = Field(default=None, max_length=1000, pattern=r"^https?://\S+$")
    webhook_max_attempts: int = Field(default=8, ge=1, le=20)
    sandbox: SandboxSimulation = Field(default_factory=SandboxSimulation)

    @field_validator("opt_out_words")
    @classmethod
    def _words(cls, value: list[str]) -> list[str]:
        out: list[str] = []
        for index, word in enumerate(value):
            norm = normalise(word)
            if not norm:
                raise ValueError(f"opt_out_words[{index}] is empty")
            if len(norm) > 50:
                raise ValueError(f"opt_out_words[{index}] is longer than 50 characters")
            if norm not in out:
                out.append(norm)
        return out


def normalise(text: str) -> str:
    """Full-width to half-width (NFKC), trimmed, lower case, inner whitespace collapsed: 'ＴＤ ' -> 'td'."""
    folded = unicodedata.normalize("NFKC", text).strip().lower()
    folded = folded.strip(" \t\r\n.!。！~～")
    return " ".join(folded.split())


@lru_cache(maxsize=256)
def _parse_cached(raw: str) -> DeliveryConfig:
    return DeliveryConfig.model_validate_json(raw)


def parse(config: dict[str, Any] | None) -> DeliveryConfig:
    import orjson

    return _parse_cached(orjson.dumps(config or {}, option=orjson.OPT_SORT_KEYS).decode())


def load(session: Session, workspace_id: int) -> tuple[DeliveryConfig, DeliverySettings | None]:
    row = session.scalar(select(DeliverySettings).where(DeliverySettings.workspace_id == workspace_id))
    return parse(row.config if row is not None else None), row


def validate(data: dict[str, Any]) -> DeliveryConfig:
    """A config from input, or ValidationFailed naming each bad field."""
    try:
        return DeliveryConfig.model_validate(data)
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(p) for p in error["loc"]) or "config", "reason": str(error["msg"])}
            for error in exc.errors()
        ]
        message = "; ".join(f"{d['field']}: {d['reason']}" for d in details[:5])
        raise ValidationFailed(message, details=details) from None
