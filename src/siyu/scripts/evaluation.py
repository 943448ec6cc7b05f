"""The labelled evaluation set of the script search, its baseline, and the figures (hit@k, MRR).

`data/library.json` holds 106 scripts written for the seeds' industries (education and exams, beauty,
mother and baby, retail, general service; 22 of them in English). `data/evaluation.json` holds customer
questions, phrased the way customers write them (not copies of the scripts' questions), each labelled
with the script(s) that answer it. bench/scripts.py prints the figures; tests/scripts checks that BM25
beats the baseline.

The baseline is a naive keyword match: the query's English words and Chinese character bigrams, each
scored 1 if it occurs anywhere in the script's text (title, question, answers), summed.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from siyu.scripts.index import Bm25Index, ScriptDoc

DATA = Path(__file__).parent / "data"
_WORD = re.compile(r"[a-z0-9]+")
_HAN = re.compile(r"[\u4e00-\u9fff]+")


@dataclass(frozen=True)
class LabelledQuestion:
    query: str
    relevant: frozenset[str]


@dataclass(frozen=True)
class Figures:
    name: str
    questions: int
    hit1: float
    hit3: float
    mrr: float

    def line(self) -> str:
        return (
            f"{self.name:<28} hit@1 {self.hit1:6.1%}   hit@3 {self.hit3:6.1%}   MRR {self.mrr:.3f}"
            f"   ({self.questions} questions)"
        )


@cache
def library() -> tuple[dict[str, Any], ...]:
    """The scripts as written: key, industry, title, question, answers."""
    return tuple(json.loads((DATA / "library.json").read_text(encoding="utf-8")))


@cache
def questions() -> tuple[LabelledQuestion, ...]:
    raw = json.loads((DATA / "evaluation.json").read_text(encoding="utf-8"))
    return tuple(LabelledQuestion(item["q"], frozenset(item["relevant"])) for item in raw)


def library_docs() -> tuple[list[ScriptDoc], dict[int, str]]:
    """The library as index documents with ids 1..n, and id -> key."""
    docs = []
    keys = {}
    for number, script in enumerate(library(), start=1):
        docs.append(ScriptDoc(number, script["title"], script["question"], tuple(script["answers"])))
        keys[number] = script["key"]
    return docs, keys


def _keywords(query: str) -> set[str]:
    text = unicodedata.normalize("NFKC", query).lower()
    words = set(_WORD.findall(text))
    for run in _HAN.findall(text):
        words.update(run[i : i + 2] for i in range(max(1, len(run) - 1)))
    return words


def doc_text(doc: ScriptDoc) -> str:
    return unicodedata.normalize("NFKC", " ".join((doc.title, doc.question, *doc.answers))).lower()


class KeywordBaseline:
    """The naive baseline: how many of the query's keywords occur as substrings of each script."""

    def __init__(self, docs: Sequence[ScriptDoc]) -> None:
        self.items = [(doc.id, doc_text(doc)) for doc in docs]

    def search(self, query: str, limit: int = 5) -> list[int]:
        keywords = _keywords(query)
        scored = []
        for doc_id, text in self.items:
            score = sum(1 for word in keywords if word in text)
            if score:
                scored.append((score, -doc_id))
        scored.sort(reverse=True)
        return [-neg for _score, neg in scored[:limit]]


def evaluate(name: str, rank: Callable[[str], list[int]], keys: dict[int, str]) -> Figures:
    """hit@1, hit@3 (a relevant script among the first k) and MRR (1 / rank of the first relevant one)."""
    hit1 = hit3 = 0
    reciprocal = 0.0
    labelled = questions()
    for question in labelled:
        ranked = [keys[i] for i in rank(question.query)]
        first = next((r for r, key in enumerate(ranked, start=1) if key in question.relevant), None)
        if first is not None:
            hit1 += first == 1
            hit3 += first <= 3
            reciprocal += 1 / first
    n = len(labelled)
    return Figures(name, n, hit1 / n, hit3 / n, reciprocal / n)


def run_evaluation() -> list[Figures]:
    """BM25 against the keyword baseline on the labelled set."""
    docs, keys = library_docs()
    index = Bm25Index.build(docs)
    baseline = KeywordBaseline(docs)
    return [
        evaluate("keyword baseline", lambda q: baseline.search(q, 10), keys),
        evaluate("BM25 (jieba, normalised)", lambda q: [h.id for h in index.search(q, 10)], keys),
    ]
