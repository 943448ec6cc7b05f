"""Normalisation and tokenisation of questions (no database)."""

from __future__ import annotations

from siyu.scripts.text import normalize, query_terms, stem, tokens


def test_full_width_becomes_half_width_and_lower_case() -> None:
    assert normalize("ＨＯＷ　ＭＵＣＨ？ＩＥＬＴＳ　６．５") == "how much ielts 6 5"


def test_punctuation_is_stripped() -> None:
    assert normalize("多少钱？！……（急）") == "价格 急"


def test_chinese_synonyms_meet_on_one_word() -> None:
    for variant in ("这个课多少钱", "学费怎么算", "收费标准是什么", "费用贵吗"):
        assert "价格" in tokens(variant), variant


def test_english_plurals_and_synonyms() -> None:
    assert stem("classes") == "class" and stem("babies") == "baby" and stem("fees") == "fee" and stem("is") == "is"
    assert "price" in tokens("What are the fees?") and "price" in tokens("How much does it cost")
    assert "the" not in tokens("the course") and "class" in tokens("the course")


def test_stop_words_are_dropped_and_terms_are_distinct() -> None:
    assert "的" not in tokens("我的孩子") and "孩子" in tokens("我的孩子")
    assert list(query_terms("宝宝 宝宝 奶粉")) == ["宝宝", "奶粉"]
