"""The user portrait: decayed affinity per content tag, and what each contact has seen.

Kept incrementally like the computed properties: the pipeline step calls `apply_content_events` with
the events after its cursor, after the computed properties and in the same transaction, so every event
counts exactly once. `rebuild_portraits` recomputes the same rows from the raw events (repair, merges,
changed settings). An event counts when its type has a weight (or is a "seen" type) and its
`content_id` property is the id of a content item of the workspace (a string, or a number from an older
integration); each of the item's content tags gains the event's weight. The tags are read when the
event is processed, so re-tagging an item changes later events only (a rebuild applies the new tags to
all of them).

Decay is exact: the affinity of one tag is sum(w_e * 0.5 ** ((today - day_e) / half_life)), stored as
(score, as_of_day) and advanced by multiplication, so batches, order and rebuilds agree up to float
rounding (see siyu.recommend.models).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field, ValidationError
from sqlalchemy import Select, delete, func, or_, select
from sqlalchemy.orm import Session

from siyu.computed.service import StreamEvent, local_day, read_events
from siyu.content.models import ContentItem, ContentItemTag
from siyu.errors import ValidationFailed
from siyu.events.service import workspace_timezone
from siyu.kit.schemas import Schema
from siyu.kit.sql import dialect_insert
from siyu.kit.time import ensure_utc, utcnow
from siyu.recommend.models import ContactContentAffinity, ContactContentSeen, ContentReach, RecommendSettings

EPOCH = dt.date(2020, 1, 1)
REBUILD_CHUNK = 50_000

DEFAULT_WEIGHTS: dict[str, float] = {
    "content.viewed": 1.0,
    "content.favorited": 3.0,
    "content.commented": 2.0,
    "content.shared": 4.0,
    "order.paid": 5.0,  # a conversion that names the content it came from (properties.content_id)
}
DEFAULT_SEEN_EVENTS = ["content.viewed", "content.favorited", "content.commented", "content.shared"]


class RecommendConfig(Schema):
    """Portrait and ranking settings of one workspace (PUT /api/v1/recommendations/settings)."""

    weights: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_WEIGHTS),
        description="affinity a content tag gains per event of this type naming an item with the tag",
    )
    half_life_days: float = Field(default=14.0, gt=0.0, le=3650.0, description="affinity halves in this many days")
    seen_events: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SEEN_EVENTS), max_length=50, description="these mark an item as seen"
    )
    # Ranking (siyu.recommend.ranking): score = (interest_floor + affinity_weight * interest)
    #   * (1 + stage_match_bonus | 1 - stage_mismatch_penalty | 1) * Thompson sample of engagement
    affinity_weight: float = Field(default=1.0, ge=0.0, le=100.0)
    interest_floor: float = Field(
        default=0.1, ge=0.0, le=100.0, description="what an item is worth to a contact with no interest in its tags"
    )
    stage_match_bonus: float = Field(default=0.3, ge=0.0, le=100.0)
    stage_mismatch_penalty: float = Field(default=0.3, ge=0.0, le=1.0)
    seen_penalty: float = Field(default=10.0, ge=0.0, le=1000.0)

    def check(self) -> RecommendConfig:
        for event_type, weight in self.weights.items():
            if not (0.0 <= weight <= 1000.0) or math.isnan(weight):
                raise ValidationFailed(f"weights.{event_type}: expected a number from 0 to 1000, got {weight}")
        return self


def load_config(session: Session, workspace_id: int) -> RecommendConfig:
    row = session.get(RecommendSettings, workspace_id)
    try:
        return RecommendConfig.model_validate(row.config if row is not None and row.config else {})
    except ValidationError:  # pragma: no cover - stored configs were validated on the way in
        return RecommendConfig()


def save_config(session: Session, workspace_id: int, config: RecommendConfig) -> RecommendSettings:
    """Stores the settings. Weights, seen events and half-life change every portrait: the caller
    rebuilds (`rebuild_portraits`) in the same transaction when they changed."""
    config.check()
    row = session.get(RecommendSettings, workspace_id, with_for_update=True)
    stored = config.model_dump(mode="json")
    if row is None:
        row = RecommendSettings(workspace_id=workspace_id, config=stored, updated_at=utcnow())
        session.add(row)
    else:
        row.config, row.updated_at = stored, utcnow()
    session.flush()
    return row


def portrait_changed(before: RecommendConfig, after: RecommendConfig) -> bool:
    return (before.weights, before.half_life_days, before.seen_events) != (
        after.weights,
        after.half_life_days,
        after.seen_events,
    )


# --- decay ------------------------------------------------------------------------------------------


def decay(days: float, half_life: float) -> float:
    return float(0.5 ** (days / half_life))


def level_of(score: float, as_of_day: dt.date, half_life: float) -> float:
    """The day number (since EPOCH) on which this affinity will have decayed to exactly 1.0."""
    return (as_of_day - EPOCH).days + half_life * math.log2(score)


def current(score: float, as_of_day: dt.date, today: dt.date, half_life: float) -> float:
    """The affinity today (days before as_of_day do not raise it: a future as_of_day counts as today)."""
    return score * decay(max((today - as_of_day).days, 0), half_life)


def advance(score: float, as_of: dt.date, add: float, add_as_of: dt.date, half_life: float) -> tuple[float, dt.date]:
    """Two decayed sums as of their own days, added as of the later day."""
    day = max(as_of, add_as_of)
    return score * decay((day - as_of).days, half_life) + add * decay((day - add_as_of).days, half_life), day


# --- folding events ---------------------------------------------------------------------------------


def content_id_of(properties: dict[str, Any]) -> int | None:
    value = properties.get("content_id")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value) or None
    return None


@dataclass(slots=True)
class _Seen:
    first_at: dt.datetime
    last_at: dt.datetime
    count: int


def _item_tags(session: Session, workspace_id: int, content_ids: Collection[int]) -> dict[int, list[int]]:
    """Items of the workspace among `content_ids` and their tags (an item without tags maps to [])."""
    ids = sorted(content_ids)
    out: dict[int, list[int]] = {}
    for start in range(0, len(ids), 5_000):
        chunk = ids[start : start + 5_000]
        for (item_id,) in session.execute(
            select(ContentItem.id).where(ContentItem.workspace_id == workspace_id, ContentItem.id.in_(chunk))
        ):
            out[int(item_id)] = []
        for item_id, tag_id in session.execute(
            select(ContentItemTag.content_id, ContentItemTag.tag_id).where(
                ContentItemTag.workspace_id == workspace_id, ContentItemTag.content_id.in_(chunk)
            )
        ):
            out.setdefault(int(item_id), []).append(int(tag_id))
    return out


def apply_content_events(session: Session, workspace_id: int, events: Sequence[StreamEvent]) -> set[int]:
    """Adds the content events among `events` to the portraits; returns the contacts touched.

    The caller owns the transaction (the pipeline step, after the computed properties) and holds the
    workspace's stream cursor, so no one else writes these rows meanwhile.
    """
    config = load_config(session, workspace_id)
    seen_types = set(config.seen_events)
    relevant = [
        (e, cid)
        for e in events
        if (e.type in config.weights or e.type in seen_types) and (cid := content_id_of(e.properties)) is not None
    ]
    if not relevant:
        return set()
    tz = workspace_timezone(session, workspace_id)
    tags = _item_tags(session, workspace_id, {cid for _, cid in relevant})
    half_life = config.half_life_days

    gains: dict[tuple[int, int], tuple[float, dt.date]] = {}
    seen: dict[tuple[int, int], _Seen] = {}
    touched: set[int] = set()
    for event, content_id in relevant:
        item_tags = tags.get(content_id)
        if item_tags is None:
            continue  # not an item of this workspace (or deleted since)
        touched.add(event.contact_id)
        weight = config.weights.get(event.type, 0.0)
        if weight > 0:
            day = local_day(event.occurred_at, tz)
            for tag_id in item_tags:
                key = (event.contact_id, tag_id)
                before = gains.get(key)
                gains[key] = (weight, day) if before is None else advance(*before, weight, day, half_life)
        if event.type in seen_types:
            at = ensure_utc(event.occurred_at)
            key = (event.contact_id, content_id)
            s = seen.get(key)
            if s is None:
                seen[key] = _Seen(at, at, 1)
            else:
                s.first_at, s.last_at, s.count = min(s.first_at, at), max(s.last_at, at), s.count + 1
    _store_gains(session, workspace_id, gains, half_life)
    _store_seen(session, workspace_id, seen)
    return touched


def _existing(session: Session, columns: Sequence[Any], keys: Collection[tuple[int, int]]) -> list[Any]:
    """Rows (plain tuples, never ORM objects that could go stale) for a superset of `keys`; the first
    two columns are the key."""
    pairs = sorted(keys)
    rows: list[Any] = []
    for start in range(0, len(pairs), 2_000):
        chunk = pairs[start : start + 2_000]
        contacts = sorted({c for c, _ in chunk})
        others = sorted({o for _, o in chunk})
        rows.extend(session.execute(select(*columns).where(columns[0].in_(contacts), columns[1].in_(others))))
    return rows


def _store_gains(
    session: Session, workspace_id: int, gains: dict[tuple[int, int], tuple[float, dt.date]], half_life: float
) -> None:
    if not gains:
        return
    merged = dict(gains)
    a = ContactContentAffinity
    for contact_id, tag_id, score, as_of in _existing(
        session, [a.contact_id, a.content_tag_id, a.score, a.as_of_day], gains
    ):
        key = (int(contact_id), int(tag_id))
        if key in gains:
            merged[key] = advance(float(score), as_of, *gains[key], half_life)
    rows = [
        {
            "workspace_id": workspace_id,
            "contact_id": contact_id,
            "content_tag_id": tag_id,
            "score": score,
            "as_of_day": day,
            "level": level_of(score, day, half_life),
        }
        for (contact_id, tag_id), (score, day) in merged.items()
        if score > 0
    ]
    if not rows:
        return
    stmt = dialect_insert(session)(ContactContentAffinity)
    stmt = stmt.on_conflict_do_update(
        index_elements=["contact_id", "content_tag_id"],
        set_={"score": stmt.excluded.score, "as_of_day": stmt.excluded.as_of_day, "level": stmt.excluded.level},
    )
    session.execute(stmt, rows)


def _store_seen(session: Session, workspace_id: int, seen: dict[tuple[int, int], _Seen]) -> None:
    if not seen:
        return
    c = ContactContentSeen
    known = {
        (int(row[0]), int(row[1])): row
        for row in _existing(session, [c.contact_id, c.content_id, c.first_at, c.last_at, c.count], seen)
    }
    new_viewers: dict[int, int] = {}
    rows = []
    for (contact_id, content_id), s in seen.items():
        row = known.get((contact_id, content_id))
        if row is None:
            new_viewers[content_id] = new_viewers.get(content_id, 0) + 1
            first, last, count = s.first_at, s.last_at, s.count
        else:
            first = min(ensure_utc(row[2]), s.first_at)
            last = max(ensure_utc(row[3]), s.last_at)
            count = int(row[4]) + s.count
        rows.append(
            {
                "workspace_id": workspace_id,
                "contact_id": contact_id,
                "content_id": content_id,
                "first_at": first,
                "last_at": last,
                "count": count,
            }
        )
    stmt = dialect_insert(session)(ContactContentSeen)
    stmt = stmt.on_conflict_do_update(
        index_elements=["contact_id", "content_id"],
        set_={"first_at": stmt.excluded.first_at, "last_at": stmt.excluded.last_at, "count": stmt.excluded.count},
    )
    session.execute(stmt, rows)
    if new_viewers:
        reach = dialect_insert(session)(ContentReach)
        reach = reach.on_conflict_do_update(
            index_elements=["content_id"], set_={"viewers": ContentReach.viewers + reach.excluded.viewers}
        )
        session.execute(
            reach,
            [{"workspace_id": workspace_id, "content_id": c, "viewers": n} for c, n in sorted(new_viewers.items())],
        )


def _recount_reach(session: Session, workspace_id: int) -> None:
    session.execute(delete(ContentReach).where(ContentReach.workspace_id == workspace_id))
    counts = session.execute(
        select(ContactContentSeen.content_id, func.count())
        .where(ContactContentSeen.workspace_id == workspace_id)
        .group_by(ContactContentSeen.content_id)
    ).all()
    if counts:
        session.execute(
            dialect_insert(session)(ContentReach),
            [{"workspace_id": workspace_id, "content_id": int(c), "viewers": int(n)} for c, n in counts],
        )


def forget_portraits(session: Session, workspace_id: int, contact_ids: Collection[int]) -> None:
    """Drops the portraits of `contact_ids` (merged away, or about to be rebuilt)."""
    ids = sorted(contact_ids)
    if not ids:
        return
    for start in range(0, len(ids), 5_000):
        chunk = ids[start : start + 5_000]
        session.execute(delete(ContactContentAffinity).where(ContactContentAffinity.contact_id.in_(chunk)))
        session.execute(delete(ContactContentSeen).where(ContactContentSeen.contact_id.in_(chunk)))
    _recount_reach(session, workspace_id)


def rebuild_portraits(
    session: Session,
    workspace_id: int,
    *,
    contact_ids: Collection[int] | None = None,
    up_to_seq: int | None = None,
) -> int:
    """Recomputes the portraits from the raw events (of `contact_ids`, or the whole workspace), up to
    `up_to_seq` so that a rebuild agrees with a stream cursor standing there. Returns events read."""
    if contact_ids is None:
        session.execute(delete(ContactContentAffinity).where(ContactContentAffinity.workspace_id == workspace_id))
        session.execute(delete(ContactContentSeen).where(ContactContentSeen.workspace_id == workspace_id))
    else:
        if not contact_ids:
            return 0
        ids = sorted(contact_ids)
        for start in range(0, len(ids), 5_000):
            chunk = ids[start : start + 5_000]
            session.execute(delete(ContactContentAffinity).where(ContactContentAffinity.contact_id.in_(chunk)))
            session.execute(delete(ContactContentSeen).where(ContactContentSeen.contact_id.in_(chunk)))
    session.execute(delete(ContentReach).where(ContentReach.workspace_id == workspace_id))
    read, after = 0, 0
    while True:
        chunk_events = read_events(
            session, workspace_id, after_seq=after, up_to_seq=up_to_seq, contact_ids=contact_ids, limit=REBUILD_CHUNK
        )
        if not chunk_events:
            break
        apply_content_events(session, workspace_id, chunk_events)
        read += len(chunk_events)
        after = chunk_events[-1].seq
    _recount_reach(session, workspace_id)
    return read


# --- reading ----------------------------------------------------------------------------------------


def today_in(session: Session, workspace_id: int, now: dt.datetime | None = None) -> dt.date:
    tz: ZoneInfo = workspace_timezone(session, workspace_id)
    return local_day(now or utcnow(), tz)


def current_affinities(
    session: Session, workspace_id: int, contact_ids: Iterable[int], today: dt.date, half_life: float
) -> dict[int, dict[int, float]]:
    """contact -> {content tag -> affinity today}."""
    ids = sorted(set(contact_ids))
    out: dict[int, dict[int, float]] = {c: {} for c in ids}
    for start in range(0, len(ids), 5_000):
        chunk = ids[start : start + 5_000]
        rows = session.execute(
            select(
                ContactContentAffinity.contact_id,
                ContactContentAffinity.content_tag_id,
                ContactContentAffinity.score,
                ContactContentAffinity.as_of_day,
            ).where(ContactContentAffinity.workspace_id == workspace_id, ContactContentAffinity.contact_id.in_(chunk))
        )
        for contact_id, tag_id, score, as_of in rows:
            out[int(contact_id)][int(tag_id)] = current(float(score), as_of, today, half_life)
    return out


def seen_items(session: Session, workspace_id: int, contact_ids: Iterable[int]) -> dict[int, dict[int, int]]:
    """contact -> {content id -> times seen}."""
    ids = sorted(set(contact_ids))
    out: dict[int, dict[int, int]] = {c: {} for c in ids}
    for start in range(0, len(ids), 5_000):
        chunk = ids[start : start + 5_000]
        rows = session.execute(
            select(ContactContentSeen.contact_id, ContactContentSeen.content_id, ContactContentSeen.count).where(
                ContactContentSeen.workspace_id == workspace_id, ContactContentSeen.contact_id.in_(chunk)
            )
        )
        for contact_id, content_id, count in rows:
            out[int(contact_id)][int(content_id)] = int(count)
    return out


def half_life_days(session: Session, workspace_id: int) -> float:
    return load_config(session, workspace_id).half_life_days


# "At least t" on `level` (days) with a hair of tolerance, so that exactly the threshold stays in
# whatever the float rounding of a sum; the plain evaluation of a rule (`reaches`) uses the same one.
LEVEL_TOLERANCE = 1e-9


def reaches(value: float, threshold: float, half_life_days: float) -> bool:
    """Whether an affinity (decayed to today) counts as at least `threshold` (> 0): the comparison
    `affinity_at_least` makes in SQL, in plain Python."""
    if value <= 0:
        return False
    return half_life_days * math.log2(value) >= half_life_days * math.log2(threshold) - LEVEL_TOLERANCE


def affinity_at_least(
    workspace_id: int,
    content_tag_id: int,
    threshold: float,
    today: dt.date,
    half_life_days: float,
    *,
    by_contact: bool = False,
) -> Select[int]:
    """The contacts whose affinity for the content tag is at least `threshold` today (`current()`, so an
    as_of_day after today counts as today): an index range on (workspace_id, content_tag_id, level).
    `half_life_days` is the workspace's (`half_life_days()`); a threshold <= 0 would take every contact,
    so it takes those with any affinity. `by_contact`: the caller cuts the set to a few contacts, so
    SQLite is kept off that index ("+ 0") and walks their primary keys instead."""
    workspace = ContactContentAffinity.workspace_id + 0 if by_contact else ContactContentAffinity.workspace_id
    statement = select(ContactContentAffinity.contact_id).where(
        workspace == workspace_id,
        ContactContentAffinity.content_tag_id == content_tag_id,
    )
    if threshold > 0:
        bound = (today - EPOCH).days + half_life_days * math.log2(threshold)
        statement = statement.where(
            ContactContentAffinity.level >= bound - LEVEL_TOLERANCE,
            # dated after today (events from a skewed clock): it has not decayed up to today, only kept
            or_(
                ContactContentAffinity.as_of_day <= today,
                ContactContentAffinity.score >= threshold * 2 ** (-LEVEL_TOLERANCE / half_life_days),
            ),
        )
    return statement


def affinity_at_least_for(
    session: Session, workspace_id: int, content_tag_id: int, threshold: float, now: dt.datetime | None = None
) -> Select[int]:
    """`affinity_at_least` with today and the half-life read from the workspace."""
    return affinity_at_least(
        workspace_id,
        content_tag_id,
        threshold,
        today_in(session, workspace_id, now),
        half_life_days(session, workspace_id),
    )


__all__ = [
    "RecommendConfig",
    "affinity_at_least",
    "affinity_at_least_for",
    "apply_content_events",
    "forget_portraits",
    "reaches",
    "rebuild_portraits",
]
