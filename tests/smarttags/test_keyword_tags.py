"""Keyword smart tags: jieba matching in Chinese, whole words in English, and tagging who said them."""

from __future__ import annotations

import pytest
from smarttag_helpers import history, make_contact, make_smart_tag, make_tag, message, mounted, tag_names

from siyu.smarttags.keywords import Message, compile_keyword
from siyu.smarttags.service import apply_keyword_rules

PRICE = ["问价格", "多少钱", "价格", "怎么收费", "how much"]


@pytest.mark.parametrize(
    "text",
    [
        "老师，这个课程多少钱？",
        "问下多少钱一节课",
        "我想问价格",
        "请问价格多少",  # the phrase 问价格 is found across the words 请问 / 价格
        "你们怎么收费的",
        "价格表发我一下",  # 价格 inside the longer word 价格表
        "How much is the course?",
        "HOW   MUCH",
        "ＨＯＷ ＭＵＣＨ",  # full-width
        "这个how much啊",
    ],
)
def test_price_questions_match(text: str) -> None:
    assert Message.of(text).first_match(PRICE) is not None


@pytest.mark.parametrize(
    "text",
    [
        "谢谢老师，我明白了",
        "评价格外好",  # 价格 is in the characters, not in the words: 评价 / 格外 / 好
        "how are you",
        "much appreciated",
        "somehow muchness",  # parts of words are not words
        "",
    ],
)
def test_other_messages_do_not_match(text: str) -> None:
    assert Message.of(text).first_match(PRICE) is None


def test_a_one_word_keyword_needs_word_boundaries_a_phrase_does_not() -> None:
    assert compile_keyword("上课").mode == "token"
    assert not Message.of("早上课间休息一下").contains(compile_keyword("上课"))  # 早上 / 课间休息
    assert Message.of("明天几点上课").contains(compile_keyword("上课"))
    assert Message.of("请问价格多少").contains(compile_keyword("价格"))  # 请问 / 价格 / 多少
    assert not Message.of("评价格外好").contains(compile_keyword("价格"))  # 评价 / 格外 / 好
    assert compile_keyword("多少钱").mode == "phrase"  # jieba: 多少 / 钱
    assert Message.of("这个课多少钱啊").contains(compile_keyword("多少钱"))
    assert compile_keyword("How Much").mode == "words"


def test_keyword_rule_tags_the_sender_once_and_history_names_the_rule(tenant, db) -> None:
    c = mounted(tenant.client)
    tag_id = make_tag(c, "asked price")
    rule = make_smart_tag(c, name="问价", tag_id=tag_id, kind="keywords", keywords=PRICE)
    asker, other = make_contact(c), make_contact(c)
    events = [
        message(asker, "老师，这个课程多少钱？"),
        message(other, "谢谢老师"),
        message(other, {"not": "text"}),
        message(other, "多少钱", kind="content.viewed"),
    ]
    with db.transaction() as session:
        assert apply_keyword_rules(session, tenant.workspace_id, events) == {asker}
    with db.transaction() as session:  # said again: already tagged, nothing changes
        assert apply_keyword_rules(session, tenant.workspace_id, [message(asker, "how much?")]) == set()
    assert tag_names(c, asker) == {"asked price"}
    assert tag_names(c, other) == set()
    assert history(c, asker) == [
        ("asked price", "added", "rule", f'smart tag rule "问价" (#{rule["id"]}): message said "多少钱"')
    ]
    counters = c.get(f"/api/v1/smart-tags/{rule['id']}").json()
    assert counters["added_total"] == 1 and counters["last_change_at"] is not None


def test_disabled_keyword_rules_do_nothing(tenant, db) -> None:
    c = mounted(tenant.client)
    tag_id = make_tag(c, "asked price")
    make_smart_tag(c, name="问价", tag_id=tag_id, kind="keywords", keywords=PRICE, enabled=False)
    asker = make_contact(c)
    with db.transaction() as session:
        assert apply_keyword_rules(session, tenant.workspace_id, [message(asker, "多少钱")]) == set()


def test_keyword_rules_stay_in_their_workspace(make_tenant, db) -> None:
    a, b = make_tenant("A"), make_tenant("B")
    ca, cb = mounted(a.client), mounted(b.client)
    make_smart_tag(ca, name="问价", tag_id=make_tag(ca, "asked price"), kind="keywords", keywords=PRICE)
    b_contact = make_contact(cb)
    with db.transaction() as session:
        # B has no keyword rules: A's rule does not tag B's contact, even given B's events under A's id
        assert apply_keyword_rules(session, b.workspace_id, [message(b_contact, "多少钱")]) == set()
        assert apply_keyword_rules(session, a.workspace_id, [message(b_contact, "多少钱")]) == set()
    assert tag_names(cb, b_contact) == set()


def test_keyword_into_an_exclusive_group_replaces_the_sibling(tenant, db) -> None:
    c = mounted(tenant.client)
    weak = make_tag(c, "B-弱意向", "意向", exclusive=True)
    strong = make_tag(c, "A-强意向", "意向")
    make_smart_tag(c, name="想报名", tag_id=strong, kind="keywords", keywords=["报名", "sign up"])
    contact = make_contact(c)
    c.post(f"/api/v1/contacts/{contact}/tags", json={"add": [weak]})
    with db.transaction() as session:
        assert apply_keyword_rules(session, tenant.workspace_id, [message(contact, "我要报名！")]) == {contact}
    assert tag_names(c, contact) == {"A-强意向"}
    assert ("B-弱意向", "removed", "exclusive", "replaced by 'A-强意向' (exclusive group)") in history(c, contact)


def test_try_keywords_shows_tokens_and_triggered_rules(tenant) -> None:
    c = mounted(tenant.client)
    tag_id = make_tag(c, "asked price")
    rule = make_smart_tag(c, name="问价", tag_id=tag_id, kind="keywords", keywords=PRICE)
    answer = c.post(
        "/api/v1/smart-tags/keywords/test", json={"text": "老师，这个课程多少钱？", "keywords": ["课程", "上课"]}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "课程" in body["tokens"] and "多少" in body["tokens"]
    assert body["rules"] == [
        {"smart_tag_id": rule["id"], "name": "问价", "tag_id": tag_id, "enabled": True, "keywords": ["多少钱"]}
    ]
    assert body["keywords"] == ["课程"]
    nothing = c.post("/api/v1/smart-tags/keywords/test", json={"text": "谢谢"}).json()
    assert nothing["rules"] == [] and nothing["keywords"] == []
