"""Offline evaluation of the ranking: hit-rate@k against a popularity baseline and random.

The demo simulator's content events name four slug-like contents per industry (`c-edu-plan-90`), not
library items, and each person picks them uniformly at random: there is no interest to learn. So the
evaluation uses its own synthetic world with latent interests:

* T topic tags; each item carries 1-2 of them and a popularity (log-normal); some items fit a stage.
* each person has interests drawn from a sparse Dirichlet over the topics and views a sequence of
  distinct items, each picked with probability ~ popularity x (interest . item topics) + a little noise,
  one every few days; some views are followed by a favourite or a share;
* each person's last view is held out; the portrait is built from the earlier events with the same
  decay arithmetic as siyu.recommend.portrait; rankers see the same history and recommend k unseen
  items; a hit is the held-out item among them.

Rankers: `siyu` (siyu.recommend.ranking with its default weights, exploration included, no stage),
`popularity` (most viewed in the training history), `random`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from siyu.recommend.portrait import DEFAULT_WEIGHTS, advance, current
from siyu.recommend.ranking import STAGES, Weights, batch_top_k, build_catalog, csr, relative, stage_row


@dataclass(frozen=True)
class World:
    topics: int = 12
    items: int = 300
    people: int = 3_000
    min_views: int = 4
    max_views: int = 14
    concentration: float = 0.1  # Dirichlet parameter of interests: small = each person has a few topics
    popularity_sigma: float = 0.6  # log-normal spread of the items' own appeal
    noise: float = 0.02  # appeal of an item outside a person's topics
    half_life_days: float = 14.0
    seed: int = 20261123


@dataclass(frozen=True)
class Result:
    people: int
    items: int
    hit_rate: dict[str, float]


def evaluate(world: World = World(), k: int = 5, weights: Weights | None = None) -> Result:
    rng = np.random.default_rng(world.seed)
    t, n, u = world.topics, world.items, world.people
    # Items: 1-2 topics each, a popularity, a stage for a fifth of them.
    item_topics: list[list[int]] = []
    topic = np.zeros((t, n))
    for j in range(n):
        tags = sorted(set(rng.choice(t, size=int(rng.integers(1, 3)), replace=False).tolist()))
        item_topics.append(tags)
        topic[tags, j] = 1.0 / len(tags)
    popularity = rng.lognormal(0.0, world.popularity_sigma, size=n)
    # People: sparse interests, a sequence of views.
    interests = rng.dirichlet(np.full(t, world.concentration), size=u)
    today = dt.date(2026, 11, 23)
    affinity = np.zeros((u, t), dtype=np.float32)
    seen: list[list[int]] = []
    held_out = np.zeros(u, dtype=np.int64)
    train_views = np.zeros(n)
    for p in range(u):
        appeal = popularity * (interests[p] @ topic + world.noise)
        views = int(rng.integers(world.min_views, world.max_views + 1))
        probability = appeal / appeal.sum()
        sequence = rng.choice(n, size=views, replace=False, p=probability)
        day = today - dt.timedelta(days=int(rng.integers(views * 2, views * 6)))
        per_tag: dict[int, tuple[float, dt.date]] = {}
        for j in sequence[:-1]:
            day += dt.timedelta(days=int(rng.integers(1, 5)))
            gain = DEFAULT_WEIGHTS["content.viewed"]
            if rng.random() < 0.15:
                gain += DEFAULT_WEIGHTS["content.favorited"]
            if rng.random() < 0.05:
                gain += DEFAULT_WEIGHTS["content.shared"]
            for tag in item_topics[int(j)]:
                before = per_tag.get(tag)
                per_tag[tag] = (gain, day) if before is None else advance(*before, gain, day, world.half_life_days)
            train_views[int(j)] += 1
        for tag, (score, as_of) in per_tag.items():
            affinity[p, tag] = current(score, as_of, today, world.half_life_days)
        seen.append([int(j) for j in sequence[:-1]])
        held_out[p] = int(sequence[-1])

    weights = weights or Weights()
    catalog = build_catalog(
        list(range(1, n + 1)),
        [f"item {j}" for j in range(n)],
        ["article"] * n,
        item_topics,
        [[] for _ in range(n)],
        list(range(t)),
        [f"topic {x}" for x in range(t)],
        weights,
    )
    # Engagement for the exploration: every item went out to everyone once (a newsletter, a broadcast
    # group); those who viewed it are its engaged contacts.
    catalog.engaged = train_views.copy()
    catalog.exposed = np.full(n, float(u))
    stages = np.full(u, stage_row(None), dtype=np.intp)
    assert len(STAGES) > 0

    hits = {"siyu": 0, "popularity": 0, "random": 0}
    for start, index, _values in batch_top_k(catalog, relative(affinity), stages, csr(seen), k, weights, rng):
        for r in range(index.shape[0]):
            hits["siyu"] += int(held_out[start + r] in set(index[r].tolist()))
    order = np.argsort(-train_views, kind="stable")
    for p in range(u):
        own = set(seen[p])
        top = [int(j) for j in order if int(j) not in own][:k]
        hits["popularity"] += int(held_out[p] in top)
        unseen = np.setdiff1d(np.arange(n), np.asarray(seen[p]))
        pick = rng.choice(unseen, size=min(k, len(unseen)), replace=False)
        hits["random"] += int(held_out[p] in set(pick.tolist()))
    return Result(u, n, {name: count / u for name, count in hits.items()})
