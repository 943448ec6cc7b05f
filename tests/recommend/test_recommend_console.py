"""The portrait and recommendations in the console: the contact page's panel (interests decayed to today,
content seen, what to send next and why, in the reader's language) and the group page's suggestions."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from tests.console.console_helpers import sign_in_client
from tests.content.content_helpers import console_client
from tests.groups.group_helpers import make_group
from tests.groups.group_helpers import mount as mount_groups
from tests.recommend.recommend_helpers import contact, event, feed, item, reset_feed, send, tag_group

from siyu.groups import stream as group_stream
from siyu.recommend import service
from siyu.usermodel import pipeline


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    reset_feed()
    service.clear_cache()
    yield
    reset_feed()


def _library(tenant):  # type: ignore[no-untyped-def]
    topics = tag_group(tenant, "主题", ["考研", "英语"])
    stages = tag_group(tenant, "适用阶段 stage", ["激活", "成交"])
    return topics, {
        "guide": item(tenant, "考研择校指南", [topics["考研"]]),
        "english": item(tenant, "四级英语", [topics["英语"]]),
        "camp": item(tenant, "考研冲刺营", [topics["考研"], stages["激活"]]),
        "renewal": item(tenant, "考研老学员续报", [topics["考研"], stages["成交"]]),
    }


def _figures(html: str) -> dict[int, float]:
    return {int(t): float(v) for t, v in re.findall(r'data-affinity="(\d+)">([\d.]+)<', html)}


def _recommended(html: str) -> dict[int, str]:
    """Recommended content id -> the text of its entry (title and reasons)."""
    return {int(c): body for c, body in re.findall(r'<li data-content="(\d+)">(.*?)</ul>', html, re.S)}


def test_contact_page_shows_the_portrait_and_what_to_send_next(app, tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    topics, ids = _library(tenant)
    me = contact(tenant, 1)
    send(
        tenant,
        event("content.viewed", 1, "2026-11-22T01:00:00Z", content_id=str(ids["guide"])),
        event("content.favorited", 1, "2026-11-22T01:05:00Z", content_id=str(ids["guide"])),
        event("content.viewed", 1, "2026-11-22T01:10:00Z", content_id=str(ids["english"])),
    )
    pipeline.catch_up(db)
    feed(db, tenant.workspace_id)
    client = console_client(app, tenant)

    page = client.get(f"/console/contacts/{me}")
    assert page.status_code == 200
    assert f'hx-get="/console/contacts/{me}/portrait"' in page.text

    panel = client.get(f"/console/contacts/{me}/portrait", headers={"HX-Request": "true"})
    assert panel.status_code == 200, panel.text
    html = panel.text
    assert 'id="portrait-panel"' in html and "用户画像" in html
    # 考研: a view and a favourite yesterday (1 + 3, halved over 1 of 14 days); 英语: one view
    decayed = 0.5 ** (1 / 14)
    assert _figures(html) == pytest.approx({topics["考研"]: round(4 * decayed, 2), topics["英语"]: round(decayed, 2)})
    assert re.search(rf'data-tag="{topics["考研"]}">.*?width: 100%', html, re.S)
    assert re.search(rf'data-tag="{topics["英语"]}">.*?width: 25%', html, re.S)
    assert "每 14 天减半" in html
    assert 'id="seen-content"' in html and "考研择校指南" in html and "×2" in html
    # what to send next: unseen published items, with the reasons in Chinese
    recommended = _recommended(html)
    assert set(recommended) == {ids["camp"], ids["renewal"]}
    camp = recommended[ids["camp"]]
    assert "考研冲刺营" in camp and f'href="/console/content/{ids["camp"]}"' in camp
    assert "对「考研」的兴趣 1.00" in camp and "未看过" in camp and "适合当前阶段：已激活" in camp
    assert "探索" in camp and "触达 0 人，互动 0 人" in camp
    # the renewal course fits customers, not this activated lead
    assert "适合 已成交客户，当前为 已激活" in recommended[ids["renewal"]]
    assert 'id="recommendations-again"' in html

    # a week later (signed in again) the interests have decayed by a further 0.5^(7/14); in English
    clock.advance(days=7)
    client = sign_in_client(app, "op@brand.cn")
    client.cookies.set("siyu_lang", "en")
    english = client.get(f"/console/contacts/{me}/portrait").text
    assert "User portrait" in english and "interest in 考研: 1.00" in english and "not seen yet" in english
    assert "for Customer, not Activated" in _recommended(english)[ids["renewal"]]
    assert _figures(english)[topics["考研"]] == pytest.approx(round(4 * 0.5 ** (8 / 14), 2))


def test_a_contact_without_interests_and_a_consultant_who_does_not_own_them(app, tenant, db) -> None:  # type: ignore[no-untyped-def]
    me = contact(tenant, 1)
    client = console_client(app, tenant)
    empty = client.get(f"/console/contacts/{me}/portrait").text
    assert 'id="affinities-empty"' in empty and 'id="recommendations-empty"' in empty
    _, ids = _library(tenant)
    fresh = client.get(f"/console/contacts/{me}/portrait").text
    recommended = _recommended(fresh)
    assert set(recommended) == set(ids.values())
    assert "尚无对 英语 的兴趣" in recommended[ids["english"]]
    consultant = console_client(app, tenant, email="cs@brand.cn", role="consultant")
    assert consultant.get(f"/console/contacts/{me}/portrait").status_code == 404


def test_group_page_suggests_content_for_its_members(app, tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    mount_groups(app)
    _, ids = _library(tenant)
    g = make_group(tenant, name="考研冲刺 1 群", wecom_chat_id="wrCON1")
    for n in (1, 2):
        contact(tenant, n)
    send(
        tenant,
        *[event("group.joined", n, "2026-11-20T01:00:00Z", group_id="wrCON1") for n in (1, 2)],
        event("content.viewed", 1, "2026-11-22T01:00:00Z", content_id=str(ids["guide"])),
        event("content.viewed", 2, "2026-11-22T01:00:00Z", content_id=str(ids["english"])),
    )
    group_stream.catch_up(db)
    pipeline.catch_up(db)
    feed(db, tenant.workspace_id)
    pushed = tenant.client.post(f"/api/v1/content/{ids['camp']}/pushes", json={"group_id": g["id"]})
    assert pushed.status_code == 201, pushed.text
    client = console_client(app, tenant)
    page = client.get(f"/console/groups/{g['id']}")
    assert page.status_code == 200
    html = page.text
    assert 'id="group-recommendations"' in html and "推荐推送的内容" in html
    suggested = set(_recommended(html))
    assert ids["camp"] not in suggested  # already pushed to this group
    assert {ids["guide"], ids["english"], ids["renewal"]} <= suggested  # seen by members, never pushed here
    assert "成员兴趣" in html and "考研 1.00" in html and "英语 1.00" in html
    assert "未推送过" in html
