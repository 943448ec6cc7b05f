"""Keyword matching over received messages, with jieba for Chinese.

Text and keywords are compared after Unicode NFKC normalisation and case folding (full-width "ＨＯＷ"
is "how"). A keyword matches a message by the first rule that applies to it:

1. No Chinese character (``how much``, ``price``): whole words, any case, any spacing between them;
   ``much`` does not match "muchness".
2. Chinese, and jieba keeps it as one word (价格, 上课, 报名): it must be a word of the message — one
   jieba token, a run of tokens, or a word jieba's search mode finds inside a longer word (价格 in 价格表).
   So 上课 does not match 早上课间 (早上 / 课间).
3. Chinese, and jieba splits it (问价格 → 问 / 价格, 多少钱 → 多少 / 钱): a phrase, matched as a substring,
   because where jieba cuts a phrase depends on the words around it.

Keywords are not added to jieba's dictionary (`jieba.add_word`): that dictionary is one per process and
shared by every workspace, so one workspace's keywords would change how another's messages are cut.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import jieba  # type: ignore[import-untyped]

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]")
WORDLIKE = re.compile(r"\w", re.UNICODE)

_warm_lock = threading.Lock()
_warm = False


def warm() -> None:
    """Loads jieba's dictionary once per process (about half a second), quietly."""
    global _warm  # noqa: PLW0603 - one dictionary per process is jieba's design
    if _warm:
        return
    with _warm_lock:
        if not _warm:
            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _warm = True


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def tokens(text: str) -> list[str]:
    """jieba's words of a message as matching sees them (normalised, without blanks)."""
    warm()
    return [t for t in jieba.lcut(normalize(text)) if t.strip()]


KeywordMode = Literal["words", "token", "phrase"]


@dataclass(frozen=True)
class Keyword:
    text: str  # as the operator wrote it
    normalized: str
    mode: KeywordMode
    pattern: re.Pattern[str] | None = None  # "words" mode


@functools.lru_cache(maxsize=8192)
def compile_keyword(keyword: str) -> Keyword:
    norm = normalize(keyword.strip())
    if not HAN.search(norm):
        words = norm.split()
        pattern = re.compile(r"\s+".join(re.escape(w) for w in words))
        return Keyword(keyword, norm, "words", pattern)
    warm()
    pieces = [t for t in jieba.lcut(norm) if t.strip()]
    return Keyword(keyword, norm, "token" if len(pieces) == 1 else "phrase")


def has_matchable_text(keyword: str) -> bool:
    """False for keywords of punctuation or symbols only, which no rule above can match sensibly."""
    return bool(WORDLIKE.search(normalize(keyword)))


@dataclass
class Message:
    """One message, normalised once; jieba cuts it only if a one-word Chinese keyword occurs in it."""

    text: str
    _bounds: set[int] | None = field(default=None, repr=False)
    _spans: set[tuple[int, int]] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, raw: str) -> Message:
        return cls(normalize(raw))

    def _cut(self) -> tuple[set[int], set[tuple[int, int]]]:
        if self._bounds is None or self._spans is None:
            warm()
            bounds: set[int] = set()
            for _, start, end in jieba.tokenize(self.text):
                bounds.update((start, end))
            self._bounds = bounds
            self._spans = {(start, end) for _, start, end in jieba.tokenize(self.text, mode="search")}
        return self._bounds, self._spans

    def contains(self, keyword: Keyword) -> bool:
        if not keyword.normalized:
            return False
        if keyword.mode == "words":
            assert keyword.pattern is not None
            return self._has_word(keyword.pattern)
        if keyword.normalized not in self.text:
            return False
        if keyword.mode == "phrase":
            return True
        bounds, spans = self._cut()
        size = len(keyword.normalized)
        start = self.text.find(keyword.normalized)
        while start != -1:
            end = start + size
            if (start in bounds and end in bounds) or (start, end) in spans:
                return True
            start = self.text.find(keyword.normalized, start + 1)
        return False

    def _has_word(self, pattern: re.Pattern[str]) -> bool:
        found = pattern.search(self.text)
        while found is not None:
            start, end = found.span()
            if not _word_char(self.text, start - 1) and not _word_char(self.text, end):
                return True
            found = pattern.search(self.text, start + 1)
        return False

    def first_match(self, keywords: Iterable[str]) -> str | None:
        """The first keyword (as written) the message contains, or None."""
        for keyword in keywords:
            if self.contains(compile_keyword(keyword)):
                return keyword
        return None

    def matches(self, keywords: Iterable[str]) -> list[str]:
        return [k for k in keywords if self.contains(compile_keyword(k))]


def _word_char(text: str, index: int) -> bool:
    """A letter or digit of a Latin-like script at `index`: a Chinese character next to a word is an edge."""
    if index < 0 or index >= len(text):
        return False
    char = text[index]
    return char.isalnum() and not HAN.match(char)
