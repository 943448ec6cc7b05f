"""Recommendations from the database: the catalog of published items, contacts' portraits, and why.

The catalog (items, their tags, stage fit) is cached per workspace behind a fingerprint query, like the
script index: any new, edited, re-tagged or deleted item changes the fingerprint. Engagement (for the
exploration) is read fresh each time from two small tables: pushes' recipient counts and content_reach.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.content.models import ContentItem, ContentItemTag, ContentPush, ContentStatus, ContentTag, ContentTagGroup
from siyu.groups.models import ChatGroupMember
from siyu.recommend import portrait
from siyu.recommend.models import ContactContentSeen, ContentReach
from siyu.recommend.ranking import (
    STAGE_GROUP,
    Catalog,
    Weights,
    batch_top_k,
    build_catalog,
    csr,
    relative,
    score_block,
    stage_key,
    stage_row,
    thompson,
)
from siyu.scoring.models import ContactScore
from siyu.segments.models import SegmentMember

CACHED_WORKSPACES = 32
MAX_LIMIT = 50


def weights_of(config: portrait.RecommendConfig) -> Weights:
    return Weights(
        affinity=config.affinity_weight,
        stage_match=config.stage_match_bonus,
        stage_mismatch=config.stage_mismatch_penalty,
        interest_floor=config.interest_floor,
        seen=config.seen_penalty,
    )


# --- the catalog ------------------------------------------------------------------------------------


@dataclass
class _Cached:
    fingerprint: tuple[Any, ...]
    catalog: Catalog


_cache: OrderedDict[tuple[str, int], _Cached] = OrderedDict()
_cache_lock = threading.Lock()


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _fingerprint(session: Session, workspace_id: int, weights: Weights) -> tuple[Any, ...]:
    items = session.execute(
        select(func.count(), func.max(ContentItem.updated_at), func.coalesce(func.sum(ContentItem.id), 0)).where(
            ContentItem.workspace_id == workspace_id, ContentItem.status == ContentStatus.published
        )
    ).one()
    links = session.execute(
        select(func.count(), func.coalesce(func.sum(ContentItemTag.tag_id + ContentItemTag.content_id), 0)).where(
            ContentItemTag.workspace_id == workspace_id
        )
    ).one()
    tags = session.execute(
        select(func.count(), func.coalesce(func.sum(ContentTag.id + ContentTag.group_id), 0)).where(
            ContentTag.workspace_id == workspace_id
        )
    ).one()
    groups = session.execute(
        select(func.count(), func.coalesce(func.sum(ContentTagGroup.id), 0)).where(
            ContentTagGroup.workspace_id == workspace_id
        )
    ).one()
    return (*items, *links, *tags, *groups, weights.stage_match, weights.stage_mismatch)


def _build(session: Session, workspace_id: int, weights: Weights) -> Catalog:
    items = session.execute(
        select(ContentItem.id, ContentItem.title, ContentItem.kind)
        .where(ContentItem.workspace_id == workspace_id, ContentItem.status == ContentStatus.published)
        .order_by(ContentItem.id)
    ).all()
    tag_rows = session.execute(
        select(ContentTag.id, ContentTag.name, ContentTagGroup.name)
        .join(ContentTagGroup, ContentTagGroup.id == ContentTag.group_id)
        .where(ContentTag.workspace_id == workspace_id)
        .order_by(ContentTag.id)
    ).all()
    stage_tags: dict[int, str] = {}
    topic_ids: list[int] = []
    topic_names: list[str] = []
    for tag_id, name, group_name in tag_rows:
        if STAGE_GROUP.search(group_name):
            key = stage_key(name)
            if key is not None:
                stage_tags[int(tag_id)] = key
            continue
        topic_ids.append(int(tag_id))
        topic_names.append(str(name))
    index = {int(i): n for n, (i, _, _) in enumerate(items)}
    item_topics: list[list[int]] = [[] for _ in items]
    item_stages: list[list[str]] = [[] for _ in items]
    for content_id, tag_id in session.execute(
        select(ContentItemTag.content_id, ContentItemTag.tag_id).where(ContentItemTag.workspace_id == workspace_id)
    ):
        j = index.get(int(content_id))
        if j is None:
            continue
        if int(tag_id) in stage_tags:
            item_stages[j].append(stage_tags[int(tag_id)])
        else:
            item_topics[j].append(int(tag_id))
    return build_catalog(
        [int(i) for i, _, _ in items],
        [str(t) for _, t, _ in items],
        [str(getattr(k, "value", k)) for _, _, k in items],
        item_topics,
        item_stages,
        topic_ids,
        topic_names,
        weights,
    )


def catalog_for(session: Session, workspace_id: int, weights: Weights) -> Catalog:
    """The workspace's published items as matrices, with fresh engagement figures."""
    key = (str(session.get_bind().engine.url), workspace_id)
    current = _fingerprint(session, workspace_id, weights)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is None or cached.fingerprint != current:
        cached = _Cached(current, _build(session, workspace_id, weights))
        with _cache_lock:
            _cache[key] = cached
            _cache.move_to_end(key)
            while len(_cache) > CACHED_WORKSPACES:
                _cache.popitem(last=False)
    base = cached.catalog
    exposed, engaged = _engagement(session, workspace_id, base)
    return Catalog(
        item_ids=base.item_ids,
        titles=base.titles,
        kinds=base.kinds,
        tag_ids=base.tag_ids,
        tag_names=base.tag_names,
        topic=base.topic,
        stage=base.stage,
        item_stages=base.item_stages,
        engaged=engaged,
        exposed=exposed,
    )


def _engagement(session: Session, workspace_id: int, catalog: Catalog) -> tuple[np.ndarray, np.ndarray]:
    """(exposed, engaged) per item: contacts a push reached (or who saw it some other way) and viewers."""
    index = catalog.index_of_items()
    exposed = np.zeros(catalog.size)
    engaged = np.zeros(catalog.size)
    for content_id, recipients in session.execute(
        select(ContentPush.content_id, func.sum(ContentPush.recipient_count))
        .where(ContentPush.workspace_id == workspace_id)
        .group_by(ContentPush.content_id)
    ):
        j = index.get(int(content_id))
        if j is not None:
            exposed[j] = float(recipients or 0)
    for content_id, viewers in session.execute(
        select(ContentReach.content_id, ContentReach.viewers).where(ContentReach.workspace_id == workspace_id)
    ):
        j = index.get(int(content_id))
        if j is not None:
            engaged[j] = float(viewers)
    return np.maximum(exposed, engaged), engaged


# --- one contact or one group -----------------------------------------------------------------------


@dataclass(frozen=True)
class Reason:
    """One reason for a recommendation, as data: `text` is the English the API gives; the console words
    the same facts in the reader's language (content/_recommendations.html).

    kind: "interest" (tag, value), "no_interest" (names: the item's topics), "no_topics", "seen" (count),
    "not_seen", "stage" (stage), "stage_mismatch" (names: the stages it fits, stage), "stage_unknown"
    (names), "exploration" (value, count: engaged, reached). `pushed` when "seen" means pushed to a group.
    """

    kind: str
    text: str
    tag: str = ""
    value: float = 0.0
    names: tuple[str, ...] = ()
    count: int = 0
    reached: int = 0
    stage: str = ""
    pushed: bool = False


@dataclass
class Recommendation:
    content_id: int
    title: str
    kind: str
    score: float
    interest: float  # (floor + affinity weight x interest): the contact's side of the score
    stage: float  # the stage factor
    exploration: float  # the Thompson sample of the item's engagement rate
    seen_count: int
    why: list[Reason] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        return [reason.text for reason in self.why]


@dataclass
class Recommendations:
    stage: str | None
    seed: int
    items: list[Recommendation]
    interests: dict[str, float]


def _rng(seed: int | None) -> tuple[np.random.Generator, int]:
    seed = secrets.randbits(32) if seed is None else seed
    return np.random.default_rng(seed), seed


def _vector(catalog: Catalog, affinities: dict[int, float]) -> np.ndarray:
    vector = np.zeros((1, len(catalog.tag_ids)), dtype=np.float32)
    tags = catalog.index_of_tags()
    for tag_id, value in affinities.items():
        t = tags.get(tag_id)
        if t is not None:
            vector[0, t] = value
    return relative(vector)


def _rank_one(
    catalog: Catalog,
    interest: np.ndarray,
    stage: str | None,
    seen: dict[int, int],
    weights: Weights,
    limit: int,
    include_seen: bool,
    rng: np.random.Generator,
    seen_word: str = "seen",
) -> list[Recommendation]:
    if catalog.size == 0:
        return []
    theta = thompson(catalog, rng)
    index = catalog.index_of_items()
    seen_cols = np.asarray([index[c] for c in seen if c in index], dtype=np.intp)
    mask = (np.zeros(len(seen_cols), dtype=np.intp), seen_cols)
    row = np.asarray([stage_row(stage)], dtype=np.intp)
    scores = score_block(catalog, interest, row, theta, weights, mask)[0]
    order = np.argsort(-scores, kind="stable")
    affinity_part = (interest @ catalog.topic)[0] * weights.affinity + weights.interest_floor
    out: list[Recommendation] = []
    for j in order:
        content_id = int(catalog.item_ids[j])
        count = seen.get(content_id, 0)
        if count and not include_seen:
            continue
        rec = Recommendation(
            content_id=content_id,
            title=catalog.titles[j],
            kind=catalog.kinds[j],
            score=round(float(scores[j]), 4),
            interest=round(float(affinity_part[j]), 4),
            stage=round(float(catalog.stage[row[0], j]), 4),
            exploration=round(float(theta[j]), 4),
            seen_count=count,
        )
        rec.why = _reasons(catalog, interest[0], j, stage, rec, seen_word)
        out.append(rec)
        if len(out) >= limit:
            break
    return out


def _reasons(
    catalog: Catalog,
    interest: np.ndarray,
    j: int,
    stage: str | None,
    rec: Recommendation,
    seen_word: str,
) -> list[Reason]:
    reasons: list[Reason] = []
    tags = np.nonzero(catalog.topic[:, j])[0]
    matched = sorted(((float(interest[t]), catalog.tag_names[t]) for t in tags if interest[t] > 0), reverse=True)
    if matched:
        reasons.extend(
            Reason("interest", f"{name} interest {value:.2f}", tag=name, value=value) for value, name in matched[:3]
        )
    elif len(tags):
        names = tuple(catalog.tag_names[t] for t in tags[:3])
        reasons.append(Reason("no_interest", "no interest yet in " + ", ".join(names), names=names))
    else:
        reasons.append(Reason("no_topics", "no topic tags"))
    pushed = seen_word == "pushed"
    if rec.seen_count:
        reasons.append(Reason("seen", f"{seen_word} {rec.seen_count}×", count=rec.seen_count, pushed=pushed))
    else:
        reasons.append(Reason("not_seen", f"not {seen_word}", pushed=pushed))
    fits = tuple(catalog.item_stages[j])
    if fits and stage is not None:
        if rec.stage > 1:
            reasons.append(Reason("stage", f"stage: {stage}", stage=stage))
        else:
            text = f"stage mismatch: for {', '.join(fits)}, contact is {stage}"
            reasons.append(Reason("stage_mismatch", text, names=fits, stage=stage))
    elif fits:
        reasons.append(Reason("stage_unknown", f"for stage {', '.join(fits)} (stage unknown)", names=fits))
    engaged, exposed = int(catalog.engaged[j]), int(catalog.exposed[j])
    text = f"exploration {rec.exploration:.2f} (engagement sample; {engaged} engaged of {exposed} reached)"
    reasons.append(Reason("exploration", text, value=rec.exploration, count=engaged, reached=exposed))
    return reasons


def _named_interests(catalog: Catalog, interest: np.ndarray, top: int = 5) -> dict[str, float]:
    order = np.argsort(-interest[0], kind="stable")[:top]
    return {catalog.tag_names[t]: round(float(interest[0, t]), 4) for t in order if interest[0, t] > 0}


def recommend_for_contact(
    session: Session,
    workspace_id: int,
    contact_id: int,
    *,
    limit: int = 5,
    seed: int | None = None,
    include_seen: bool = False,
    now: dt.datetime | None = None,
) -> Recommendations:
    config = portrait.load_config(session, workspace_id)
    weights = weights_of(config)
    catalog = catalog_for(session, workspace_id, weights)
    today = portrait.today_in(session, workspace_id, now)
    affinities = portrait.current_affinities(session, workspace_id, [contact_id], today, config.half_life_days)
    seen = portrait.seen_items(session, workspace_id, [contact_id])[contact_id]
    stage = session.scalar(select(ContactScore.lifecycle_stage).where(ContactScore.contact_id == contact_id))
    interest = _vector(catalog, affinities[contact_id])
    rng, seed = _rng(seed)
    items = _rank_one(catalog, interest, stage, seen, weights, limit, include_seen, rng)
    return Recommendations(stage, seed, items, _named_interests(catalog, interest))


def group_members(session: Session, workspace_id: int, group_id: int) -> list[int]:
    return [
        int(c)
        for c in session.scalars(
            select(ChatGroupMember.contact_id).where(
                ChatGroupMember.workspace_id == workspace_id,
                ChatGroupMember.group_id == group_id,
                ChatGroupMember.left_at.is_(None),
            )
        )
    ]


def recommend_for_group(
    session: Session,
    workspace_id: int,
    group_id: int,
    *,
    limit: int = 5,
    seed: int | None = None,
    include_seen: bool = False,
    now: dt.datetime | None = None,
) -> tuple[Recommendations, int]:
    """The group's portrait is the mean of its current members' current affinities; its stage the most
    common lifecycle stage among them; "seen" means already pushed to the group. Returns (ranking, members)."""
    config = portrait.load_config(session, workspace_id)
    weights = weights_of(config)
    catalog = catalog_for(session, workspace_id, weights)
    members = group_members(session, workspace_id, group_id)
    today = portrait.today_in(session, workspace_id, now)
    affinities = portrait.current_affinities(session, workspace_id, members, today, config.half_life_days)
    mean: dict[int, float] = {}
    for per_contact in affinities.values():
        for tag_id, value in per_contact.items():
            mean[tag_id] = mean.get(tag_id, 0.0) + value / max(len(members), 1)
    stages = Counter(
        s
        for s in session.scalars(
            select(ContactScore.lifecycle_stage).where(
                ContactScore.contact_id.in_(members), ContactScore.lifecycle_stage.is_not(None)
            )
        )
        if s
    )
    stage = stages.most_common(1)[0][0] if stages else None
    pushed: dict[int, int] = {
        int(c): int(n)
        for c, n in session.execute(
            select(ContentPush.content_id, func.count())
            .where(ContentPush.workspace_id == workspace_id, ContentPush.group_id == group_id)
            .group_by(ContentPush.content_id)
        )
    }
    interest = _vector(catalog, mean)
    rng, seed = _rng(seed)
    items = _rank_one(catalog, interest, stage, pushed, weights, limit, include_seen, rng, seen_word="pushed")
    return Recommendations(stage, seed, items, _named_interests(catalog, interest)), len(members)


# --- batch: a whole segment -------------------------------------------------------------------------


@dataclass
class BatchRow:
    contact_id: int
    content_ids: list[int]
    scores: list[float]


def recommend_batch(
    session: Session,
    workspace_id: int,
    contact_ids: Sequence[int],
    *,
    limit: int = 5,
    seed: int | None = None,
    now: dt.datetime | None = None,
) -> list[BatchRow]:
    """Top `limit` unseen-first items for each contact, with numpy matrix products in chunks."""
    config = portrait.load_config(session, workspace_id)
    weights = weights_of(config)
    catalog = catalog_for(session, workspace_id, weights)
    ids = list(contact_ids)
    if not ids or catalog.size == 0:
        return [BatchRow(c, [], []) for c in ids]
    today = portrait.today_in(session, workspace_id, now)
    row_of = {c: r for r, c in enumerate(ids)}
    tags = catalog.index_of_tags()
    items = catalog.index_of_items()
    interest = np.zeros((len(ids), len(catalog.tag_ids)), dtype=np.float32)
    for c, per_contact in portrait.current_affinities(session, workspace_id, ids, today, config.half_life_days).items():
        for tag_id, value in per_contact.items():
            t = tags.get(tag_id)
            if t is not None:
                interest[row_of[c], t] = value
    interest = relative(interest)
    stages = np.full(len(ids), stage_row(None), dtype=np.intp)
    for start in range(0, len(ids), 5_000):
        chunk = ids[start : start + 5_000]
        for c, s in session.execute(
            select(ContactScore.contact_id, ContactScore.lifecycle_stage).where(ContactScore.contact_id.in_(chunk))
        ):
            stages[row_of[int(c)]] = stage_row(s)
    seen: list[list[int]] = [[] for _ in ids]
    for c, seen_by_contact in portrait.seen_items(session, workspace_id, ids).items():
        seen[row_of[c]] = [items[i] for i in seen_by_contact if i in items]
    rng, _ = _rng(seed)
    out: list[BatchRow] = []
    for start, index, values in batch_top_k(catalog, interest, stages, csr(seen), limit, weights, rng):
        for r in range(index.shape[0]):
            out.append(
                BatchRow(
                    ids[start + r],
                    [int(catalog.item_ids[j]) for j in index[r]],
                    [round(float(v), 4) for v in values[r]],
                )
            )
    return out


def segment_page(
    session: Session, workspace_id: int, segment_id: int, *, after: int, size: int, owner_id: int | None
) -> list[int]:
    from siyu.contacts.models import Contact

    statement = select(SegmentMember.contact_id).where(
        SegmentMember.workspace_id == workspace_id,
        SegmentMember.segment_id == segment_id,
        SegmentMember.contact_id > after,
    )
    if owner_id is not None:
        statement = statement.where(
            SegmentMember.contact_id.in_(select(Contact.id).where(Contact.owner_id == owner_id))
        )
    return [int(c) for c in session.scalars(statement.order_by(SegmentMember.contact_id).limit(size))]


# --- the portrait as shown --------------------------------------------------------------------------


@dataclass
class Affinity:
    tag_id: int
    tag: str
    group: str
    current: float
    score: float
    as_of_day: dt.date


@dataclass
class SeenItem:
    content_id: int
    title: str
    count: int
    first_at: dt.datetime
    last_at: dt.datetime


def portrait_of(
    session: Session, workspace_id: int, contact_id: int, *, top: int = 10, now: dt.datetime | None = None
) -> tuple[portrait.RecommendConfig, dt.date, list[Affinity], list[SeenItem]]:
    from siyu.recommend.models import ContactContentAffinity as A

    config = portrait.load_config(session, workspace_id)
    today = portrait.today_in(session, workspace_id, now)
    rows = session.execute(
        select(A.content_tag_id, ContentTag.name, ContentTagGroup.name, A.score, A.as_of_day)
        .join(ContentTag, ContentTag.id == A.content_tag_id)
        .join(ContentTagGroup, ContentTagGroup.id == ContentTag.group_id)
        .where(A.workspace_id == workspace_id, A.contact_id == contact_id)
    ).all()
    affinities = [
        Affinity(
            int(t),
            str(name),
            str(group),
            round(portrait.current(float(score), as_of, today, config.half_life_days), 4),
            round(float(score), 4),
            as_of,
        )
        for t, name, group, score, as_of in rows
    ]
    affinities.sort(key=lambda a: (-a.current, a.tag_id))
    seen = [
        SeenItem(int(c), str(title), int(n), first, last)
        for c, title, n, first, last in session.execute(
            select(
                ContactContentSeen.content_id,
                ContentItem.title,
                ContactContentSeen.count,
                ContactContentSeen.first_at,
                ContactContentSeen.last_at,
            )
            .join(ContentItem, ContentItem.id == ContactContentSeen.content_id)
            .where(ContactContentSeen.workspace_id == workspace_id, ContactContentSeen.contact_id == contact_id)
            .order_by(ContactContentSeen.last_at.desc())
            .limit(100)
        )
    ]
    return config, today, affinities[:top], seen


__all__ = ["clear_cache", "recommend_batch", "recommend_for_contact", "recommend_for_group"]
