"""A workspace's settings for the built-in models, validated, with defaults that fit the seeds.

Stored as JSON on `scoring_settings.config`. Every field has a default, so `{}` is a valid config and a
PUT only needs what differs. A bad value is refused with the path of the field (pydantic's `loc`,
e.g. `lifecycle.churned_after_days` or `transaction_stages[1].moved_by[0]`). docs/en/scoring.md
describes every field.
"""

from __future__ import annotations

import itertools
from functools import cached_property
from typing import Annotated, Any, Literal

import orjson
from pydantic import Field, StringConstraints, ValidationError, ValidationInfo, field_validator, model_validator

from siyu.errors import ValidationFailed
from siyu.events.catalog import EVENT_TYPE_PATTERN
from siyu.kit.schemas import Schema

EventType = Annotated[str, StringConstraints(pattern=EVENT_TYPE_PATTERN.pattern, min_length=3, max_length=64)]

LIFECYCLE_STAGES = ("acquired", "activated", "customer", "repeat_customer", "advocate", "at_risk", "churned")
Tier = Literal["loyal", "high_quality", "ordinary", "low_frequency", "lost"]
TIERS: tuple[Tier, ...] = ("loyal", "high_quality", "ordinary", "low_frequency", "lost")
INTENTION_LEVELS = ("strong", "weak", "none")
QUINTILE_CUTS = 4  # four cut points split customers into five scores


def _unique(values: list[str], what: str) -> list[str]:
    seen: dict[str, int] = {}
    for index, value in enumerate(values):
        if value in seen:
            raise ValueError(f"[{index}] repeats {what} {value!r} (already at [{seen[value]}])")
        seen[value] = index
    return values


class LifecycleConfig(Schema):
    engagement_events: list[EventType] = Field(
        default=[
            "message.received",
            "content.viewed",
            "content.favorited",
            "content.commented",
            "content.shared",
            "group.joined",
            "live.attended",
            "form.submitted",
            "price.viewed",
            "coupon.redeemed",
            "referral.invited",
        ],
        max_length=50,
        description="the first of these makes an acquired contact activated; the last (with paid orders and "
        "advocate events) ends a silence",
    )
    advocate_events: list[EventType] = Field(
        default=["referral.invited", "content.shared"],
        max_length=20,
        description="a customer with advocate_min_events of these is an advocate",
    )
    advocate_min_events: int = Field(default=1, ge=1, le=10_000)
    repeat_min_orders: int = Field(default=2, ge=2, le=10_000, description="paid orders that make a repeat customer")
    at_risk_after_days: int = Field(default=30, ge=1, le=3650, description="days of silence before at risk")
    churned_after_days: int = Field(
        default=90, ge=2, le=3650, validate_default=True, description="days of silence before churned"
    )

    @field_validator("engagement_events", "advocate_events")
    @classmethod
    def _unique_types(cls, values: list[str]) -> list[str]:
        return _unique(values, "event type")

    @field_validator("churned_after_days")
    @classmethod
    def _after_at_risk(cls, value: int, info: ValidationInfo) -> int:
        at_risk = info.data.get("at_risk_after_days")
        if at_risk is not None and value <= at_risk:
            raise ValueError(f"must be more than at_risk_after_days ({at_risk}), got {value}")
        return value


def _cuts(values: list[Any] | None) -> list[Any] | None:
    if values is None:
        return None
    if len(values) != QUINTILE_CUTS:
        raise ValueError(f"give exactly {QUINTILE_CUTS} cut points (scores 1-5 lie between them), got {len(values)}")
    if any(b < a for a, b in itertools.pairwise(values)):
        raise ValueError(f"cut points must not decrease, got {values}")
    return values


class FixedCuts(Schema):
    """Fixed cut points instead of quintiles, per dimension (null: quintiles of this workspace's customers)."""

    recency_days: list[Annotated[int, Field(ge=0)]] | None = Field(
        default=None, examples=[[7, 30, 90, 180]], description="R 5 if days since last order <= 1st, ... R 1 if > 4th"
    )
    frequency: list[Annotated[int, Field(ge=0)]] | None = Field(
        default=None, examples=[[1, 2, 3, 5]], description="F 1 if paid orders <= 1st, ... F 5 if > 4th"
    )
    monetary_yuan: list[Annotated[float, Field(ge=0, allow_inf_nan=False)]] | None = Field(
        default=None, examples=[[100, 300, 800, 2000]], description="M 1 if net paid <= 1st, ... M 5 if > 4th"
    )

    _check = field_validator("recency_days", "frequency", "monetary_yuan")(_cuts)


class RfmConfig(Schema):
    order_event: EventType = Field(default="order.paid", description="a paid order; its `amount` property adds to M")
    refund_event: EventType = Field(
        default="order.refunded", validate_default=True, description="a refund; its `amount` subtracts from M"
    )
    fixed_cuts: FixedCuts = Field(default_factory=FixedCuts)

    @field_validator("refund_event")
    @classmethod
    def _not_the_order_event(cls, value: str, info: ValidationInfo) -> str:
        if value == info.data.get("order_event"):
            raise ValueError("must differ from order_event")
        return value


Score = Annotated[int, Field(ge=1, le=5)]


class TierRule(Schema):
    """A tier and the R/F/M ranges (inclusive, 1-5) a customer must fall in; the first matching rule wins."""

    tier: Tier
    r_min: Score = 1
    r_max: Score = 5
    f_min: Score = 1
    f_max: Score = 5
    m_min: Score = 1
    m_max: Score = 5

    @field_validator("r_max", "f_max", "m_max")
    @classmethod
    def _max_not_below_min(cls, value: int, info: ValidationInfo) -> int:
        low_name = f"{(info.field_name or '?')[0]}_min"
        low = info.data.get(low_name)
        if low is not None and value < low:
            raise ValueError(f"must not be below {low_name} ({low}), got {value}")
        return value

    def matches(self, r: int, f: int, m: int) -> bool:
        return self.r_min <= r <= self.r_max and self.f_min <= f <= self.f_max and self.m_min <= m <= self.m_max

    def describe(self) -> str:
        """'R≥4 F≥4 M≥4', 'R≤1', 'R 2-3', 'F=3': only the bounds that constrain; 'any R/F/M' when none does."""
        parts = []
        for letter, low, high in (
            ("R", self.r_min, self.r_max),
            ("F", self.f_min, self.f_max),
            ("M", self.m_min, self.m_max),
        ):
            if low > 1 and high < 5:
                parts.append(f"{letter}={low}" if low == high else f"{letter} {low}-{high}")
            elif low > 1:
                parts.append(f"{letter}≥{low}")
            elif high < 5:
                parts.append(f"{letter}≤{high}")
        return " ".join(parts) or "any R/F/M"


DEFAULT_TIERS = [
    TierRule(tier="loyal", r_min=4, f_min=4, m_min=4),
    TierRule(tier="high_quality", r_min=3, m_min=4),
    TierRule(tier="lost", r_max=1),
    TierRule(tier="low_frequency", f_max=2),
    TierRule(tier="ordinary"),
]


class IntentionRule(Schema):
    event_type: EventType
    points: float = Field(ge=-1000, le=1000, allow_inf_nan=False, description="per event, before decay")
    label: str = Field(min_length=1, max_length=40, description="how the reason names it, e.g. consulted")


DEFAULT_INTENTION_RULES = [
    IntentionRule(event_type="message.received", points=10, label="consulted"),
    IntentionRule(event_type="price.viewed", points=15, label="viewed a price"),
    IntentionRule(event_type="form.submitted", points=20, label="submitted a form"),
    IntentionRule(event_type="live.attended", points=15, label="attended a live"),
    IntentionRule(event_type="content.commented", points=5, label="commented"),
    IntentionRule(event_type="content.favorited", points=4, label="saved content"),
    IntentionRule(event_type="content.shared", points=4, label="shared content"),
    IntentionRule(event_type="content.viewed", points=2, label="viewed content"),
]


class IntentionConfig(Schema):
    rules: list[IntentionRule] = Field(default_factory=lambda: list(DEFAULT_INTENTION_RULES), max_length=50)
    half_life_days: float = Field(
        default=7, gt=0, le=3650, allow_inf_nan=False, description="points halve every N days"
    )
    window_days: int = Field(default=90, ge=1, le=3650, description="days older than this count nothing")
    weak_threshold: float = Field(default=10, ge=0, allow_inf_nan=False)
    strong_threshold: float = Field(default=40, gt=0, allow_inf_nan=False, validate_default=True)

    @field_validator("rules")
    @classmethod
    def _one_rule_per_type(cls, rules: list[IntentionRule]) -> list[IntentionRule]:
        _unique([r.event_type for r in rules], "event_type")
        return rules

    @cached_property
    def points(self) -> dict[str, float]:
        return {r.event_type: r.points for r in self.rules}

    @cached_property
    def labels(self) -> dict[str, str]:
        return {r.event_type: r.label for r in self.rules}

    @field_validator("strong_threshold")
    @classmethod
    def _above_weak(cls, value: float, info: ValidationInfo) -> float:
        weak = info.data.get("weak_threshold")
        if weak is not None and value <= weak:
            raise ValueError(f"must be more than weak_threshold ({weak:g}), got {value:g}")
        return value


class StageTrigger(Schema):
    """Moves a contact to the stage: an event they did (optionally one whose property equals a value),
    or membership of a segment."""

    event_type: EventType | None = None
    property: str | None = Field(default=None, min_length=1, max_length=64)
    equals: str | int | float | bool | None = Field(
        default=None, description="compared as a JSON value (true is not 1); with property"
    )
    segment_id: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_kind(self) -> StageTrigger:
        if (self.event_type is None) == (self.segment_id is None):
            raise ValueError("give either event_type (optionally with property and equals) or segment_id")
        if self.segment_id is not None and (self.property is not None or self.equals is not None):
            raise ValueError("property and equals go with event_type, not with segment_id")
        if (self.property is None) != (self.equals is None):
            raise ValueError("property and equals go together: the event's property must equal the value (not null)")
        return self

    def describe(self, segment_names: dict[int, str]) -> str:
        if self.segment_id is not None:
            name = segment_names.get(self.segment_id)
            return f"in segment {name!r}" if name else f"in segment {self.segment_id}"
        if self.property is not None:
            return f"{self.event_type} with {self.property} = {orjson.dumps(self.equals).decode()}"
        return str(self.event_type)


class TransactionStage(Schema):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", examples=["certified"])
    label: str = Field(min_length=1, max_length=60, examples=["已拿证"])
    moved_by: list[StageTrigger] = Field(min_length=1, max_length=20)


class ScoringConfig(Schema):
    """Settings of the built-in models for one workspace. PUT replaces them all: missing fields take defaults."""

    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)
    rfm: RfmConfig = Field(default_factory=RfmConfig)
    value_tiers: list[TierRule] = Field(
        default_factory=lambda: list(DEFAULT_TIERS),
        min_length=1,
        max_length=20,
        description="first matching rule wins; a customer no rule matches has no tier",
    )
    intention: IntentionConfig = Field(default_factory=IntentionConfig)
    transaction_stages: list[TransactionStage] = Field(
        default_factory=list, max_length=30, description="in order: the furthest stage reached wins"
    )

    @field_validator("transaction_stages")
    @classmethod
    def _unique_keys(cls, stages: list[TransactionStage]) -> list[TransactionStage]:
        _unique([s.key for s in stages], "key")
        return stages

    def segment_ids(self) -> set[int]:
        return {t.segment_id for s in self.transaction_stages for t in s.moved_by if t.segment_id is not None}


def field_path(loc: tuple[int | str, ...]) -> str:
    """('lifecycle', 'churned_after_days') -> 'lifecycle.churned_after_days'; indexes as [n]."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_config(raw: Any) -> ScoringConfig:
    """Validates stored or sent settings; ValidationFailed names each bad field's path."""
    try:
        return ScoringConfig.model_validate(raw)
    except ValidationError as exc:
        details = [{"field": field_path(tuple(e["loc"])), "reason": e["msg"]} for e in exc.errors()]
        message = "; ".join(f"{d['field']}: {d['reason']}" for d in details[:5])
        raise ValidationFailed(f"scoring settings refused: {message}", details=details) from None


__all__ = [
    "DEFAULT_INTENTION_RULES",
    "DEFAULT_TIERS",
    "INTENTION_LEVELS",
    "LIFECYCLE_STAGES",
    "TIERS",
    "FixedCuts",
    "IntentionConfig",
    "IntentionRule",
    "LifecycleConfig",
    "RfmConfig",
    "ScoringConfig",
    "StageTrigger",
    "Tier",
    "TierRule",
    "TransactionStage",
    "field_path",
    "parse_config",
]
