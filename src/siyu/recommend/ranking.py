"""Ranking content for people: the arithmetic, in numpy, apart from the database.

For a contact c and a published item i, the expected engagement, with Thompson sampling for the
item's own engagement rate:

    score = (interest_floor + affinity_weight * interest(c, i))   interest = mean over the item's topic
                                                                   tags of the contact's affinity,
                                                                   relative to their strongest (0..1)
          * stage factor                                           1 + stage_match_bonus when one of the
                                                                   item's stage tags is the contact's
                                                                   lifecycle stage, 1 - stage_mismatch_penalty
                                                                   when it has stage tags and none fits, else 1
          * theta_i                                                theta_i ~ Beta(engaged+1, exposed-engaged+1):
                                                                   a fresh draw per ranking, so items with
                                                                   little evidence (new ones) get tried
          - seen_penalty if c has seen i                           (the API also leaves seen items out)

The floor lets a contact without interests yet still get the items people engage with. In matrix form,
for a block of m contacts: `(X (m x T) @ M (T x n) + floor) * S[stage] * Theta`, with X the relative
interests and M[t, i] = 1 / |topic tags of i| where i has tag t. Batch mode draws `THOMPSON_ROWS`
samples per item once and gives each contact one of them at random: for each contact that is still a
draw from the posterior, at the cost of a gather instead of m x n Beta draws.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

THOMPSON_ROWS = 64
DEFAULT_CHUNK = 16_384

# Content tag groups whose name matches this are "stage fit" groups; their tags name lifecycle stages.
STAGE_GROUP = re.compile(r"阶段|stage|生命周期|lifecycle", re.IGNORECASE)
# Stage tag names (lower case, spaces and hyphens as "_") -> the lifecycle stages of siyu.scoring.
STAGE_ALIASES: dict[str, str] = {
    "acquired": "acquired",
    "new": "acquired",
    "新客": "acquired",
    "新用户": "acquired",
    "获客": "acquired",
    "引流": "acquired",
    "activated": "activated",
    "激活": "activated",
    "已激活": "activated",
    "种草": "activated",
    "customer": "customer",
    "客户": "customer",
    "成交": "customer",
    "首单": "customer",
    "转化": "customer",
    "repeat_customer": "repeat_customer",
    "repeat": "repeat_customer",
    "复购": "repeat_customer",
    "advocate": "advocate",
    "推荐官": "advocate",
    "忠实": "advocate",
    "裂变": "advocate",
    "at_risk": "at_risk",
    "风险": "at_risk",
    "沉默": "at_risk",
    "churned": "churned",
    "流失": "churned",
    "召回": "churned",
}
STAGES = ("acquired", "activated", "customer", "repeat_customer", "advocate", "at_risk", "churned")


def stage_key(tag_name: str) -> str | None:
    key = re.sub(r"[\s\-]+", "_", tag_name.strip().lower())
    return STAGE_ALIASES.get(key)


@dataclass(frozen=True)
class Weights:
    affinity: float = 1.0
    interest_floor: float = 0.1
    stage_match: float = 0.3
    stage_mismatch: float = 0.3
    seen: float = 10.0


@dataclass
class Catalog:
    """The published items of a workspace as matrices (built from the database by siyu.recommend.service)."""

    item_ids: I64
    titles: list[str]
    kinds: list[str]
    tag_ids: list[int]  # topic tags (every content tag outside the stage groups), in row order of `topic`
    tag_names: list[str]
    topic: F32  # (T, n)
    stage: F32  # (len(STAGES) + 1, n): the stage factor per lifecycle stage; the last row (no stage) is 1
    item_stages: list[list[str]]  # each item's stage keys
    engaged: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    exposed: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    @property
    def size(self) -> int:
        return len(self.item_ids)

    def index_of_items(self) -> dict[int, int]:
        return {int(i): n for n, i in enumerate(self.item_ids)}

    def index_of_tags(self) -> dict[int, int]:
        return {t: n for n, t in enumerate(self.tag_ids)}


def build_catalog(
    item_ids: Sequence[int],
    titles: Sequence[str],
    kinds: Sequence[str],
    item_topic_tags: Sequence[Sequence[int]],
    item_stages: Sequence[Sequence[str]],
    tag_ids: Sequence[int],
    tag_names: Sequence[str],
    weights: Weights,
) -> Catalog:
    n, tags = len(item_ids), len(tag_ids)
    row = {t: k for k, t in enumerate(tag_ids)}
    topic = np.zeros((tags, n), dtype=np.float32)
    for j, item_tags in enumerate(item_topic_tags):
        rows = [row[t] for t in item_tags if t in row]
        if rows:
            topic[rows, j] = 1.0 / len(rows)
    stage = np.ones((len(STAGES) + 1, n), dtype=np.float32)
    for j, keys in enumerate(item_stages):
        if not keys:
            continue
        for s, name in enumerate(STAGES):
            stage[s, j] = 1.0 + weights.stage_match if name in keys else max(1.0 - weights.stage_mismatch, 0.0)
    return Catalog(
        item_ids=np.asarray(item_ids, dtype=np.int64),
        titles=list(titles),
        kinds=list(kinds),
        tag_ids=list(tag_ids),
        tag_names=list(tag_names),
        topic=topic,
        stage=stage,
        item_stages=[list(k) for k in item_stages],
        engaged=np.zeros(n),
        exposed=np.zeros(n),
    )


def stage_row(stage: str | None) -> int:
    """The row of Catalog.stage for a lifecycle stage (the neutral last row for none or unknown)."""
    return STAGES.index(stage) if stage in STAGES else len(STAGES)


def relative(interest: F32) -> F32:
    """Each row divided by its largest value (rows of zeros stay zero): interests from 0 to 1."""
    top = interest.max(axis=1, keepdims=True) if interest.shape[1] else np.zeros((interest.shape[0], 1), np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(top > 0, interest / np.where(top > 0, top, 1), 0)
    return out.astype(np.float32, copy=False)


def thompson(catalog: Catalog, rng: np.random.Generator, rows: int | None = None) -> F32:
    """Posterior samples of each item's engagement rate: Beta(engaged + 1, exposed - engaged + 1)."""
    a = catalog.engaged + 1.0
    b = np.maximum(catalog.exposed - catalog.engaged, 0.0) + 1.0
    size = (catalog.size,) if rows is None else (rows, catalog.size)
    return rng.beta(a, b, size=size).astype(np.float32)


def score_block(
    catalog: Catalog,
    interest: F32,
    stage_rows: npt.NDArray[np.intp],
    theta: F32,
    weights: Weights,
    seen: tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]] | None = None,
) -> F32:
    """Scores of m contacts (rows of `interest`, relative) for every item: (m, n).

    `theta` is (m, n) or (n,); `seen` is (row indexes, item indexes) of the items each has seen."""
    scores = interest @ catalog.topic
    if weights.affinity != 1.0:
        scores *= np.float32(weights.affinity)
    scores += np.float32(weights.interest_floor)
    scores *= catalog.stage[stage_rows]
    scores *= theta
    if seen is not None and len(seen[0]):
        scores[seen[0], seen[1]] -= np.float32(weights.seen)
    return scores


def top_k(scores: F32, k: int) -> tuple[npt.NDArray[np.intp], F32]:
    """Per row, the k best item indexes (best first) and their scores."""
    k = min(k, scores.shape[1])
    if k <= 0:
        return np.zeros((scores.shape[0], 0), np.intp), np.zeros((scores.shape[0], 0), np.float32)
    if k < scores.shape[1]:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(scores.shape[1]), scores.shape).copy()
    values = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(values, order, axis=1)


def csr(lists: Sequence[Sequence[int]]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.intp]]:
    """Per-row lists of item indexes as (indptr, indices), the form batch_top_k takes."""
    indptr = np.zeros(len(lists) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(x) for x in lists])
    indices = np.fromiter((j for x in lists for j in x), dtype=np.intp, count=int(indptr[-1]))
    return indptr, indices


def batch_top_k(
    catalog: Catalog,
    interest: F32,
    stage_rows: npt.NDArray[np.intp],
    seen: tuple[npt.NDArray[np.int64], npt.NDArray[np.intp]] | None,
    k: int,
    weights: Weights,
    rng: np.random.Generator,
    chunk: int = DEFAULT_CHUNK,
) -> Iterator[tuple[int, npt.NDArray[np.intp], F32]]:
    """Top k items for every row of `interest` (relative interests), chunk by chunk.

    `seen` is (indptr, indices) as made by `csr`: the item indexes (not ids) each row has seen; they
    are penalised, not removed. Yields (first row, item indexes, scores) per chunk."""
    samples = thompson(catalog, rng, THOMPSON_ROWS)
    for start in range(0, interest.shape[0], chunk):
        stop = min(start + chunk, interest.shape[0])
        theta = samples[rng.integers(0, THOMPSON_ROWS, size=stop - start)]
        mask = None
        if seen is not None:
            indptr, indices = seen
            lo, hi = int(indptr[start]), int(indptr[stop])
            counts = np.diff(indptr[start : stop + 1])
            rows = np.repeat(np.arange(stop - start, dtype=np.intp), counts)
            mask = (rows, indices[lo:hi])
        scores = score_block(catalog, interest[start:stop], stage_rows[start:stop], theta, weights, mask)
        index, values = top_k(scores, k)
        yield start, index, values
