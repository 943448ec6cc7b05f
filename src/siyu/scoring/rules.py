"""The built-in models as plain functions: one contact's facts in, a value and the reasons out.

No database here (siyu.scoring.repository reads the facts), so each model can be read, tested and
explained on its own. Dates are local days in the workspace's time zone; "N days ago" counts days.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from siyu.scoring.config import IntentionConfig, LifecycleConfig, RfmConfig, ScoringConfig, TierRule

NO_REFUND_TEXT = ""


@dataclass(slots=True)
class Facts:
    """What the models need to know of one contact, read from the computed properties.

    Times are local days in the workspace's time zone, as date ordinals (date.toordinal()): the models
    count whole days, and a million contacts are cheaper to read as integers than as datetimes.
    """

    contact_id: int
    added_day: int
    last_active_day: int | None = None
    first_engaged_day: int | None = None
    advocacy: int = 0
    orders: int = 0
    last_order_day: int | None = None
    paid_cents: int = 0
    refunded_cents: int = 0

    @property
    def net_cents(self) -> int:
        return self.paid_cents - self.refunded_cents


class LocalDays:
    """UTC timestamps as read from the database -> local day ordinals, cached per minute of time.

    SQLite hands back 'YYYY-MM-DD HH:MM:SS.ffffff' text, PostgreSQL naive UTC datetimes; a workspace's
    timestamps fall on few distinct minutes, so each is converted once.
    """

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._cache: dict[object, int] = {}

    def __call__(self, value: str | dt.datetime | None) -> int | None:
        if value is None:
            return None
        key: object = value[:16] if isinstance(value, str) else value.replace(second=0, microsecond=0)
        found = self._cache.get(key)
        if found is None:
            moment = dt.datetime.fromisoformat(value[:16]) if isinstance(value, str) else value
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            found = self._cache[key] = moment.astimezone(self.tz).date().toordinal()
        return found


@dataclass(frozen=True, slots=True)
class RfmCuts:
    """Four cut points per dimension. R: fewer days is better; F and M: more is better."""

    recency_days: tuple[int, ...]
    frequency: tuple[int, ...]
    monetary_cents: tuple[int, ...]
    customers: int

    def to_json(self) -> dict[str, Any]:
        return {
            "recency_days": list(self.recency_days),
            "frequency": list(self.frequency),
            "monetary_cents": list(self.monetary_cents),
            "customers": self.customers,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> RfmCuts | None:
        if not data:
            return None
        return cls(
            recency_days=tuple(data["recency_days"]),
            frequency=tuple(data["frequency"]),
            monetary_cents=tuple(data["monetary_cents"]),
            customers=int(data["customers"]),
        )

    def with_fixed(self, config: RfmConfig) -> RfmCuts:
        """The workspace's fixed cut points, where it set any, in place of the quintiles."""
        fixed = config.fixed_cuts
        return RfmCuts(
            recency_days=tuple(fixed.recency_days) if fixed.recency_days is not None else self.recency_days,
            frequency=tuple(fixed.frequency) if fixed.frequency is not None else self.frequency,
            monetary_cents=(
                tuple(round(y * 100) for y in fixed.monetary_yuan)
                if fixed.monetary_yuan is not None
                else self.monetary_cents
            ),
            customers=self.customers,
        )


# --- formatting ---------------------------------------------------------------------------------


def local_day(moment: dt.datetime, tz: ZoneInfo) -> dt.date:
    return moment.astimezone(tz).date()


def day_text(ordinal: int) -> str:
    return dt.date.fromordinal(ordinal).isoformat()


def days_ago(days: int) -> str:
    if days <= 0:
        return "today"
    return "1 day ago" if days == 1 else f"{days} days ago"


def number(value: float) -> str:
    """46.5, 30, 25.1: two decimals at most, no trailing zeros."""
    text = repr(round(value, 2) + 0.0)  # + 0.0: no "-0"
    return text[:-2] if text.endswith(".0") else text


def yuan(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}¥{abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# --- lifecycle ----------------------------------------------------------------------------------


def lifecycle(facts: Facts, config: LifecycleConfig, today: int) -> tuple[str, str]:
    """Silence first (churned, then at risk), else the furthest of advocate, repeat customer, customer,
    activated, acquired. `today` is a local day ordinal."""
    base, why = _progress(facts, config)
    since = facts.last_active_day if facts.last_active_day is not None else facts.added_day
    silent_days = today - since
    if silent_days < config.at_risk_after_days:
        return base, why
    if facts.last_active_day is None:
        quiet = f"no activity since added on {day_text(since)}, {days_ago(silent_days)}"
    else:
        quiet = f"no activity for {plural(silent_days, 'day')} (last active {day_text(since)})"
    stage_name = base.replace("_", " ")
    if silent_days >= config.churned_after_days:
        return "churned", f"churned ({stage_name}): {quiet}; churned after {config.churned_after_days} days"
    return "at_risk", f"at risk ({stage_name}): {quiet}; at risk after {config.at_risk_after_days} days"


def _progress(facts: Facts, config: LifecycleConfig) -> tuple[str, str]:
    if facts.orders > 0 and facts.last_order_day is not None:
        orders = plural(facts.orders, "paid order")
        if facts.advocacy >= config.advocate_min_events:
            kinds = ", ".join(config.advocate_events)
            return "advocate", f"advocate: {orders} and {plural(facts.advocacy, 'advocate event')} ({kinds})"
        if facts.orders >= config.repeat_min_orders:
            return "repeat_customer", f"repeat customer: {orders}, last on {day_text(facts.last_order_day)}"
        return "customer", f"customer: {orders} on {day_text(facts.last_order_day)}"
    if facts.first_engaged_day is not None:
        return "activated", f"activated: first engaged on {day_text(facts.first_engaged_day)}"
    return "acquired", f"acquired: added on {day_text(facts.added_day)}, no engagement yet"


# --- RFM and value tiers ------------------------------------------------------------------------


def quintile_ranks(n: int) -> tuple[int, ...]:
    """0-based positions of the four cut points among n sorted values (nearest rank ceil(k*n/5))."""
    return tuple(math.ceil(k * n / 5) - 1 for k in range(1, 5)) if n else ()


def quintile_cuts(values: Sequence[int]) -> tuple[int, ...]:
    """Nearest-rank 20th, 40th, 60th and 80th percentiles: the k-th cut is the value at rank ceil(k*n/5).

    With customers scored by `score_up`, each score then holds a fifth of them when values differ;
    tied values share a score, so a population where most bought once puts them all in F 1.
    """
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return ()
    return tuple(ordered[math.ceil(k * n / 5) - 1] for k in range(1, 5))


def score_up(value: int, cuts: Sequence[int]) -> int:
    """More is better (F, M): 1 + how many cut points the value is above."""
    return 1 + bisect.bisect_left(cuts, value)


def score_down(value: int, cuts: Sequence[int]) -> int:
    """Fewer is better (R, in days): 5 - how many cut points the value is above."""
    return 5 - bisect.bisect_left(cuts, value)


def _range_text(position: int, cuts: Sequence[int], fmt: object) -> str:
    """The band a value lies in, given how many cut points it is above: '≤ 7', '> 7 and ≤ 30', '> 90'."""
    render = fmt if callable(fmt) else str
    if position == 0:
        return f"≤ {render(cuts[0])}"
    if position == len(cuts):
        return f"> {render(cuts[-1])}"
    return f"> {render(cuts[position - 1])} and ≤ {render(cuts[position])}"


def rfm(facts: Facts, cuts: RfmCuts, today: int) -> tuple[int, int, int, list[str]]:
    assert facts.last_order_day is not None
    recency = today - facts.last_order_day
    r = score_down(recency, cuts.recency_days)
    f = score_up(facts.orders, cuts.frequency)
    m = score_up(facts.net_cents, cuts.monetary_cents)
    refunds = f", {yuan(facts.refunded_cents)} refunded" if facts.refunded_cents else NO_REFUND_TEXT
    lines = [
        f"R {r} (last order {days_ago(recency)} {_range_text(5 - r, cuts.recency_days, str)})",
        f"F {f} ({plural(facts.orders, 'paid order')} {_range_text(f - 1, cuts.frequency, str)})",
        f"M {m} (net paid {yuan(facts.net_cents)}{refunds} {_range_text(m - 1, cuts.monetary_cents, yuan)})",
    ]
    return r, f, m, lines


def value_tier(r: int, f: int, m: int, rules: Sequence[TierRule]) -> tuple[str | None, str]:
    for rule in rules:
        if rule.matches(r, f, m):
            return rule.tier, f"tier {rule.tier}: {rule.describe()}"
    return None, f"no tier: no value_tiers rule matches R {r} F {f} M {m}"


# --- intention ----------------------------------------------------------------------------------


def decay(points: float, count: int, age_days: int, half_life_days: float) -> float:
    """points × count × 0.5^(age / half-life), age in whole local days (today is 0)."""
    return points * count * decay_weight(age_days, half_life_days)


def decay_weight(age_days: int, half_life_days: float) -> float:
    return float(0.5 ** (max(age_days, 0) / half_life_days))


INTENTION_SCALE = 10**9  # intention totals are kept in billionths of a point, as integers
_CENT = INTENTION_SCALE // 100


class Decay:
    """The numbers of one intention setting. Intention on local day T, with half-life h: of the contact's
    scored events on the days after T - window_days (later days too, from a skewed clock), take A, the
    last day with one, and

        total = Σ count × factor(type, A - day)      factor(t, a) = round(points(t) × 0.5^(a / h) × 10^9)
        score = round_half_even(total × multiplier(T - A) / 10^7) / 100,   multiplier(d) = 0.5^(d / h)

    `total` is exact integer billionths of a point as of A: the same in any order, on any database, in
    a batch or a rebuild; one multiplication decays it to today. So a contact's total changes only when
    its events do, and a full run reads it (siyu.scoring.intention) instead of the whole window."""

    def __init__(self, config: IntentionConfig) -> None:
        self.config = config
        self.points = config.points
        self.half_life = config.half_life_days
        self._factors: dict[tuple[str, int], int] = {}

    def factor(self, event_type: str, age_days: int) -> int:
        """Billionths of a point one event of the type adds to a total anchored `age_days` after it."""
        key = (event_type, age_days)
        found = self._factors.get(key)
        if found is None:
            found = self._factors[key] = round(
                self.points[event_type] * decay_weight(age_days, self.half_life) * INTENTION_SCALE
            )
        return found

    def multiplier(self, days: int) -> float:
        """0.5^(days / h): the decay of a total over `days` (negative: an anchor after today)."""
        return float(0.5 ** (days / self.half_life))


def decayed_cents(total: int, multiplier: float) -> int:
    """Hundredths of a point: the total decayed by the multiplier, halves to even. Plain IEEE double
    arithmetic in this order (total as a double, × multiplier, ÷ 10^7), which a full run's SQL repeats."""
    return round(total * multiplier / _CENT)


def intention_fingerprint(config: IntentionConfig) -> str:
    """What a stored total depends on: the points per type, the half-life and the window."""
    data = {
        "points": sorted([r.event_type, r.points] for r in config.rules),
        "half_life_days": config.half_life_days,
        "window_days": config.window_days,
    }
    return hashlib.sha256(orjson.dumps(data)).hexdigest()


def intention_level(score: float, config: IntentionConfig) -> str:
    if score >= config.strong_threshold:
        return "strong"
    return "weak" if score >= config.weak_threshold else "none"


def intention(
    days: Sequence[tuple[str, int, int]], config: IntentionConfig, decay: Decay
) -> tuple[float, str, list[str]]:
    """Score, level and reasons from (event type, age in local days, count) rows (the plain evaluation
    of Decay's definition; ages below 0 are days after today). Rows outside the window or of types
    without points count nothing."""
    counted = [(t, age, n) for t, age, n in days if t in decay.points and age < config.window_days]
    totals: dict[str, int] = {}
    counts: dict[str, int] = {}
    multiplier = 1.0
    if counted:
        anchor_age = min(age for _, age, _ in counted)  # the last day with a scored event
        multiplier = decay.multiplier(anchor_age)
        for event_type, age, count in counted:
            totals[event_type] = totals.get(event_type, 0) + count * decay.factor(event_type, age - anchor_age)
            counts[event_type] = counts.get(event_type, 0) + count
    score = decayed_cents(sum(totals.values()), multiplier) / 100
    if not totals:
        summary = f"intention 0: no scored events in the last {config.window_days} days"
    else:
        labels, points = config.labels, config.points
        parts = sorted(
            (decayed_cents(total, multiplier) / 100, labels[event_type], counts[event_type], points[event_type])
            for event_type, total in totals.items()
        )
        parts.sort(key=lambda p: -p[0])  # stable: equal contributions stay in label order
        summary = f"intention {number(score)} = " + " + ".join(
            f"{label} ×{count} ({number(rule_points * count)} → {number(decayed)} after decay)"
            for decayed, label, count, rule_points in parts
        )
    level = intention_level(score, config)
    if level == "strong":
        why = f"strong: {number(score)} ≥ {number(config.strong_threshold)}"
    elif level == "weak":
        strong = number(config.strong_threshold)
        why = f"weak: {number(score)} ≥ {number(config.weak_threshold)}, below strong at {strong}"
    else:
        why = f"none: {number(score)} < {number(config.weak_threshold)}"
    return score, level, [summary, f"{why} (points halve every {number(config.half_life_days)} days)"]


def kept_intention(
    kept: tuple[int, int] | None, config: IntentionConfig, decay: Decay, today: int
) -> tuple[float, str]:
    """Score and level from a kept (anchor day, total) (siyu.scoring.intention): the same numbers
    `intention` gives over the window's daily counts, without reading them. None: no scored events."""
    score = 0.0 if kept is None else decayed_cents(kept[1], decay.multiplier(today - kept[0])) / 100
    return score, intention_level(score, config)


def bought(facts: Facts, order_event: str) -> list[str]:
    return [f"no intention score: bought ({facts.orders} × {order_event}); it scores people who have not bought"]


# --- transaction stages -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StageHit:
    """One trigger of a stage that a contact met, and since when."""

    stage_index: int
    trigger: str
    since: int | None  # local day ordinal


def transaction_stage(
    hits: Sequence[StageHit], config: ScoringConfig, segment_names: dict[int, str]
) -> tuple[str | None, list[str]]:
    stages = config.transaction_stages
    if not hits:
        first = stages[0]
        moved = " or ".join(t.describe(segment_names) for t in first.moved_by)
        return None, [f"no stage reached: the first, {first.label!r}, is reached by {moved}"]
    furthest = max(h.stage_index for h in hits)
    stage = stages[furthest]
    met = sorted(
        (h for h in hits if h.stage_index == furthest),
        key=lambda h: (h.since if h.since is not None else dt.date.max.toordinal(), h.trigger),
    )[0]
    when = f" on {day_text(met.since)}" if met.since is not None else ""
    return stage.key, [f"stage {stage.label} ({stage.key}): {met.trigger}{when}"]


__all__ = [
    "Decay",
    "Facts",
    "LocalDays",
    "RfmCuts",
    "StageHit",
    "bought",
    "day_text",
    "days_ago",
    "decay",
    "decay_weight",
    "decayed_cents",
    "intention",
    "intention_fingerprint",
    "intention_level",
    "lifecycle",
    "local_day",
    "number",
    "quintile_cuts",
    "quintile_ranks",
    "rfm",
    "score_down",
    "score_up",
    "transaction_stage",
    "value_tier",
    "yuan",
]
