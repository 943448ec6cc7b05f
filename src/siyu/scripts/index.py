"""BM25 over scripts, in memory: one index per workspace, rebuilt when its scripts change.

The ranking is BM25F in its simplest form: each field's term counts are weighted (question 3, title 2,
answers 1) and summed into one pseudo-document, whose weighted length enters BM25's length
normalisation. Every posting stores its final per-term weight (the tf part of BM25), so a query is
only `sum(idf(term) * weight)` over the postings of its terms, and the top k come from a heap.

Plain Python on purpose: at 10,000 scripts a query takes a few milliseconds (bench/scripts.py), the
index builds in about a second, and there is no dependency to pin (bm25s would need numpy and scipy
for a speed we do not need; its scores are the same formula).
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from siyu.scripts.text import query_terms, tokens

K1 = 1.2
B = 0.75
FIELD_WEIGHTS = {"question": 3.0, "title": 2.0, "answers": 1.0}


@dataclass(frozen=True)
class ScriptDoc:
    """What the index reads of one script."""

    id: int
    title: str
    question: str
    answers: tuple[str, ...]


@dataclass(frozen=True)
class Hit:
    id: int
    score: float
    terms: tuple[str, ...]  # the query's terms found in the script (the "why")


Analysed = tuple[dict[str, float], float]


def analyse(doc: ScriptDoc) -> Analysed:
    """A script's field-weighted term counts and weighted length."""
    weighted: dict[str, float] = {}
    length = 0.0
    for name, text in (("question", doc.question), ("title", doc.title), ("answers", " ".join(doc.answers))):
        weight = FIELD_WEIGHTS[name]
        field_tokens = tokens(text)
        length += weight * len(field_tokens)
        for token in field_tokens:
            weighted[token] = weighted.get(token, 0.0) + weight
    return weighted, length


@dataclass
class Bm25Index:
    ids: list[int] = field(default_factory=list)
    postings: dict[str, dict[int, float]] = field(default_factory=dict)
    idf: dict[str, float] = field(default_factory=dict)

    @classmethod
    def build(cls, docs: Iterable[ScriptDoc], analysed: dict[ScriptDoc, Analysed] | None = None) -> Bm25Index:
        """`analysed` keeps each script's tokens between builds (filled here): a rebuild after one edit
        tokenises only the changed script."""
        index = cls()
        counts: list[dict[str, float]] = []
        lengths: list[float] = []
        cache = analysed if analysed is not None else {}
        for doc in docs:
            found = cache.get(doc)
            if found is None:
                found = cache[doc] = analyse(doc)
            weighted, length = found
            index.ids.append(doc.id)
            counts.append(weighted)
            lengths.append(length)
        n = len(counts)
        average = (sum(lengths) / n) if n else 1.0
        average = average or 1.0
        df: Counter[str] = Counter()
        for position, weighted in enumerate(counts):
            norm = K1 * (1 - B + B * lengths[position] / average)
            for term, tf in weighted.items():
                df[term] += 1
                index.postings.setdefault(term, {})[position] = tf * (K1 + 1) / (tf + norm)
        index.idf = {term: math.log(1 + (n - d + 0.5) / (d + 0.5)) for term, d in df.items()}
        return index

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, query: str, limit: int = 5, *, allowed: Sequence[int] | None = None) -> list[Hit]:
        terms = query_terms(query)
        scores: dict[int, float] = {}
        for term in terms:
            postings = self.postings.get(term)
            if not postings:
                continue
            idf = self.idf[term]
            for position, weight in postings.items():
                scores[position] = scores.get(position, 0.0) + idf * weight
        if allowed is not None:
            keep = set(allowed)
            scores = {p: s for p, s in scores.items() if self.ids[p] in keep}
        best = heapq.nlargest(limit, scores.items(), key=lambda item: (item[1], -item[0]))
        return [
            Hit(
                id=self.ids[position],
                score=round(score, 4),
                terms=tuple(term for term in terms if position in self.postings.get(term, {})),
            )
            for position, score in best
        ]
