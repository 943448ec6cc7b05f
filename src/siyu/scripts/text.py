"""Normalising and tokenising questions and scripts (Chinese and English) for the script search.

The steps, in order (docs/en/scripts.md explains each):

1. NFKC: full-width letters, digits and punctuation become half-width (`ｈｏｗ　ｍｕｃｈ？` -> `how much?`).
2. Lower case.
3. Chinese synonyms, on the text: each variant in `SYNONYMS` is replaced by its canonical word, longest
   first (`多少钱` / `收费` / `学费` -> `价格`), so jieba sees one word however the customer put it.
4. Punctuation and symbols become spaces.
5. jieba's search mode (`lcut_for_search`: words and the shorter words inside them) with a private
   tokenizer and a small domain dictionary, so other modules' use of jieba is not affected.
6. English: a very light stemmer (`classes` -> `class`, `fees` -> `fee`, `babies` -> `baby`) and
   English synonyms on the token (`cost` / `fee` / `pricing` -> `price`).
7. Stop words (a short list of particles and function words) and blank tokens are dropped.

Tokens keep their order and repetitions (BM25 counts them).
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata

import jieba  # type: ignore[import-untyped]

jieba.setLogLevel(logging.WARNING)

# canonical word -> variants. Keep it small: each entry must be a true synonym in a customer question.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "价格": ("多少钱", "价钱", "费用", "收费", "学费", "报价", "几多钱", "啥价"),
    "优惠": ("折扣", "打折", "便宜点", "便宜些", "有活动", "活动价", "优惠券", "券"),
    "退款": ("退费", "退钱", "退货", "退掉"),
    "发货": ("寄出", "几天到", "多久到", "快递"),
    "孩子": ("小孩", "娃", "小朋友", "儿子", "女儿"),
    "宝宝": ("婴儿", "新生儿", "宝贝"),
    "效果": ("有用吗", "有没有用", "管用", "见效"),
    "上课": ("听课", "开课"),
    "试听": ("体验课", "试课", "免费课"),
    "安全": ("副作用", "伤皮肤"),
    "发票": ("开票", "报销"),
    "孕妇": ("怀孕", "孕期"),
    "四六级": ("四级", "六级"),
}
ENGLISH_SYNONYMS: dict[str, str] = {
    "cost": "price",
    "fee": "price",
    "pricing": "price",
    "expensive": "price",
    "tuition": "price",
    "refund": "refund",
    "return": "refund",
    "discount": "discount",
    "coupon": "discount",
    "promo": "discount",
    "deal": "discount",
    "ship": "shipping",
    "delivery": "shipping",
    "deliver": "shipping",
    "kid": "child",
    "son": "child",
    "daughter": "child",
    "infant": "baby",
    "newborn": "baby",
    "lesson": "class",
    "course": "class",
}
_CHINESE_STOP = (
    "的 了 吗 呢 啊 吧 呀 么 哦 嘛 嗯 哈 啦 是 我 你 您 他 她 们 我们 你们 在 有 和 就 都 也 还 再 又 给 把 被 让 跟 "
    "这 那 个 这个 那个 哪个 什么 怎么 怎么样 一直 一下 请问 想 要 会 能 能不能 可以 是不是 有没有 没有 需要 好"
)
_ENGLISH_STOP = (
    "a an the is are was be to of for in on at do does did i you my your me it its this that and or "
    "with can could would will please hi hello what how"
)
STOP_WORDS = frozenset(f"{_CHINESE_STOP} {_ENGLISH_STOP}".split())
# Words jieba's default dictionary cuts badly in this domain.
DOMAIN_WORDS = (
    "试听",
    "网课",
    "敏感肌",
    "纸尿裤",
    "奶粉",
    "辅食",
    "月子",
    "包邮",
    "七天无理由",
    "退款",
    "押金",
    "分期",
    "代金券",
    "会员卡",
    "积分",
    "直播课",
    "录播",
    "班主任",
    "考研",
    "雅思",
    "托福",
    "四六级",
    "教资",
    "公考",
    "补课",
    "美容院",
    "水光针",
    "医美",
    "面膜",
    "精华",
    "防晒",
    "祛痘",
    "痘印",
    "正品",
    "保质期",
    "尺码",
    "发票",
)

_VARIANTS = {variant: canonical for canonical, variants in SYNONYMS.items() for variant in variants}
_SYNONYM_RE = re.compile("|".join(re.escape(v) for v in sorted(_VARIANTS, key=len, reverse=True)))
_ASCII_WORD = re.compile(r"^[a-z][a-z0-9'-]*$")

_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None


def tokenizer() -> jieba.Tokenizer:
    """A private jieba tokenizer with the domain words, initialised once (about a second)."""
    global _tokenizer  # noqa: PLW0603 - one tokenizer per process is the point
    if _tokenizer is None:
        with _lock:
            if _tokenizer is None:
                made = jieba.Tokenizer()
                made.initialize()
                for word in DOMAIN_WORDS:
                    made.add_word(word, freq=20000)
                for canonical in SYNONYMS:
                    made.add_word(canonical, freq=20000)
                _tokenizer = made
    return _tokenizer


def _is_punctuation(char: str) -> bool:
    return unicodedata.category(char)[0] in "PSZC"


def normalize(text: str) -> str:
    """Steps 1-4: half-width, lower case, Chinese synonyms to their canonical word, punctuation to spaces."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    text = _SYNONYM_RE.sub(lambda m: f" {_VARIANTS[m.group(0)]} ", text)
    text = "".join(" " if _is_punctuation(c) else c for c in text)
    return " ".join(text.split())


def stem(word: str) -> str:
    """A deliberately tiny English stemmer: plural endings only."""
    if len(word) <= 3 or not _ASCII_WORD.match(word):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def canonical_token(token: str) -> str:
    if _ASCII_WORD.match(token):
        token = stem(token)
        return ENGLISH_SYNONYMS.get(token, token)
    return token


def tokens(text: str) -> list[str]:
    """The search tokens of a text (steps 1-7)."""
    out = []
    for raw in tokenizer().lcut_for_search(normalize(text)):
        token = raw.strip()
        if not token or token in STOP_WORDS:
            continue
        token = canonical_token(token)
        if token and token not in STOP_WORDS:
            out.append(token)
    return out


def query_terms(text: str) -> dict[str, str]:
    """The distinct tokens of a query, each with the word the customer used (shown as "why")."""
    terms: dict[str, str] = {}
    for raw in tokenizer().lcut_for_search(normalize(text)):
        token = raw.strip()
        if not token or token in STOP_WORDS:
            continue
        canonical = canonical_token(token)
        if canonical and canonical not in STOP_WORDS:
            terms.setdefault(canonical, token)
    return terms
