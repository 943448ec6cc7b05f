"""Console pages for segments: the list, the builder's live preview, saving, a segment's page, and the
user-model panel of the contact page; then the builder in a real Chromium."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from console_helpers import PASSWORD, ConsoleStaff, sign_in_client
from test_console_browser import CHROMIUM, SCREENSHOTS, _sign_in, browser, server  # noqa: F401

from siyu.auth.principal import Principal
from siyu.auth.scopes import ALL_SCOPES
from siyu.computed.service import rebuild
from siyu.contacts.schemas import ContactCreate, IdentityIn
from siyu.contacts.service import create_contact
from siyu.db import Database
from siyu.events.repository import allocate_seq, insert_events
from siyu.kit.time import utcnow
from siyu.scoring.models import ContactScore
from siyu.staff.models import Role
from siyu.staff.schemas import StaffCreate
from siyu.staff.service import add_staff
from siyu.tags.schemas import TagCreate, TagGroupCreate
from siyu.tags.service import create_group, create_tag
from siyu.workspaces.service import create_workspace

# The issue's example: strong-intention Douyin leads in Shanghai who viewed exam content twice this week
# and have not bought.
EXAMPLE_RULE: dict[str, Any] = {
    "and": [
        {"computed": "intention_level", "op": "eq", "value": "strong"},
        {"attribute": "source_channel", "op": "eq", "value": "douyin"},
        {"attribute": "region", "op": "eq", "value": "上海"},
        {
            "event": "content.viewed",
            "where": [{"property": "topic", "op": "eq", "value": "exam"}],
            "count": {"op": "gte", "value": 2},
            "within_last_days": 7,
        },
        {"computed": "order_count", "op": "eq", "value": 0},
    ]
}


@dataclass
class World:
    workspace_id: int
    ids: dict[str, int]  # contact name -> id
    tag_id: int


# name, source channel, region, intention level, exam views this week, paid orders
PEOPLE = [
    ("张三", "douyin", "上海", "strong", 2, 0),  # the only one who matches
    ("李四", "douyin", "上海", "strong", 1, 0),  # viewed once
    ("王五", "douyin", "上海", "strong", 3, 1),  # has bought
    ("赵六", "xiaohongshu", "上海", "strong", 2, 0),  # not from Douyin
    ("钱七", "douyin", "北京", "strong", 2, 0),  # not in Shanghai
    ("孙八", "douyin", "上海", "weak", 2, 0),  # weak intention
]


def build_world(db: Database) -> World:
    now = utcnow()
    with db.transaction() as session:
        workspace = create_workspace(session, "品牌A")
        staff = add_staff(
            session,
            workspace.id,
            StaffCreate(email="op@brand.cn", name="运营小李", role=Role.operator, password=PASSWORD),
        )
        add_staff(
            session,
            workspace.id,
            StaffCreate(email="cs@brand.cn", name="顾问小王", role=Role.consultant, password=PASSWORD),
        )
        principal = Principal(workspace_id=workspace.id, scopes=ALL_SCOPES, staff_id=staff.id, role=Role.operator)
        group = create_group(session, workspace.id, TagGroupCreate(name="兴趣"))
        tag = create_tag(session, workspace.id, TagCreate(group_id=group.id, name="考研"))
        ids: dict[str, int] = {}
        events: list[tuple[int, str, dict[str, Any], dt.datetime]] = []
        for n, (name, channel, region, level, views, orders) in enumerate(PEOPLE):
            contact = create_contact(
                session,
                principal,
                ContactCreate(
                    name=name,
                    source_channel=channel,
                    region=region,
                    identities=[IdentityIn(type="phone", value=f"1390013{n:04d}")],
                ),
                region="CN",
            )
            ids[name] = contact.id
            session.add(
                ContactScore(
                    workspace_id=workspace.id,
                    contact_id=contact.id,
                    lifecycle_stage="activated",
                    intention_score=42.5 if level == "strong" else 12.0,
                    intention_level=level,
                    value_tier=None,
                    reasons={"intention": [f"viewed content {views} times (+{2 * views})", "consulted (+10)"]},
                    computed_at=now,
                )
            )
            for v in range(views):
                events.append(
                    (
                        contact.id,
                        "content.viewed",
                        {"content_id": "c1", "topic": "exam"},
                        now - dt.timedelta(hours=v + 1),
                    )
                )
            for o in range(orders):
                events.append(
                    (contact.id, "order.paid", {"order_id": f"o{n}{o}", "amount": 99}, now - dt.timedelta(days=2))
                )
        first = allocate_seq(session, workspace.id, len(events))
        insert_events(
            session,
            [
                {
                    "workspace_id": workspace.id,
                    "seq": first + k,
                    "event_id": f"test:{first + k}",
                    "type": kind,
                    "contact_id": contact_id,
                    "occurred_at": at,
                    "received_at": now,
                    "properties": properties,
                }
                for k, (contact_id, kind, properties, at) in enumerate(events)
            ],
        )
        session.flush()
        rebuild(session, workspace.id)
        return World(workspace.id, ids, tag.id)


@pytest.fixture
def world(db) -> World:  # type: ignore[no-untyped-def]
    return build_world(db)


@pytest.fixture
def operator(app, world) -> ConsoleStaff:  # type: ignore[no-untyped-def]
    return ConsoleStaff(0, sign_in_client(app, "op@brand.cn"))


@pytest.fixture
def consultant(app, world) -> ConsoleStaff:  # type: ignore[no-untyped-def]
    return ConsoleStaff(0, sign_in_client(app, "cs@brand.cn"))


def _preview(staff: ConsoleStaff, rule: Any, **extra: str) -> str:
    text = rule if isinstance(rule, str) else json.dumps(rule, ensure_ascii=False)
    page = staff.csrf("/console/segments")
    response = staff.client.post(
        "/console/segments/preview", data={"rule": text, **extra}, headers={"HX-Request": "true", "X-CSRF-Token": page}
    )
    assert response.status_code == 200, response.text
    return response.text


def _count(html: str) -> int:
    match = re.search(r'data-count="(\d+)"', html)
    assert match, html
    return int(match.group(1))


def _save(staff: ConsoleStaff, name: str, rule: Any, path: str = "/console/segments") -> Any:
    text = rule if isinstance(rule, str) else json.dumps(rule, ensure_ascii=False)
    return staff.post(path, {"name": name, "description": "", "rule": text}, page="/console/segments")


def test_list_page_and_navigation(operator, consultant) -> None:
    page = operator.client.get("/console/segments")
    assert page.status_code == 200
    assert 'href="/console/segments"' in page.text and "分群" in page.text
    assert "还没有分群" in page.text and 'href="/console/segments/new"' in page.text
    # consultants read segments (nav item, list) but do not build them
    seen = consultant.client.get("/console/segments")
    assert seen.status_code == 200 and 'href="/console/segments/new"' not in seen.text
    assert consultant.client.get("/console/segments/new").status_code == 403


def test_builder_page_carries_the_vocabulary(operator, world) -> None:
    page = operator.client.get("/console/segments/new")
    assert page.status_code == 200
    assert 'id="builder"' in page.text and 'name="rule"' in page.text
    assert 'hx-trigger="input changed delay:400ms, load"' in page.text
    vocab = json.loads(
        re.search(r'data-json="([^"]*)"', page.text).group(1).replace("&#34;", '"').replace("&amp;", "&")
    )
    assert {"intention_level", "order_count"} <= {c["value"] for c in vocab["computed"]}
    assert "content.viewed" in vocab["eventTypes"]
    assert vocab["tagGroups"][0]["tags"] == [{"id": world.tag_id, "name": "考研"}]
    assert "douyin" in vocab["sourceChannels"]
    assert vocab["text"]["addCondition"] == "+ 条件"


def test_preview_counts_the_issues_example(operator, world) -> None:
    html = _preview(operator, EXAMPLE_RULE)
    assert _count(html) == 1
    assert f'href="/console/contacts/{world.ids["张三"]}"' in html and "张三" in html
    # loosen it: anyone from Douyin in Shanghai
    assert _count(_preview(operator, {"and": EXAMPLE_RULE["and"][1:3]})) == 4
    # NOT and OR, one level of groups
    rule = {"and": [{"attribute": "region", "op": "eq", "value": "上海"}, {"not": {"or": EXAMPLE_RULE["and"][1:2]}}]}
    html = _preview(operator, rule)
    assert _count(html) == 1 and "赵六" in html


def test_a_bad_rule_shows_the_path_and_reason_never_a_500(operator) -> None:
    bad_op = {"and": [{"attribute": "region", "op": "bigger", "value": "上海"}]}
    html = _preview(operator, bad_op)
    assert 'data-error-path="$.and[0].op"' in html and "expected one of" in html
    html = _preview(operator, {"and": [{"event": "content.viewed", "count": {"op": "gte", "value": "two"}}]})
    assert 'data-error-path="$.and[0].count.value"' in html
    html = _preview(operator, '{"and": [')
    assert "not valid JSON" in html
    assert "添加一个条件" in _preview(operator, {"and": []})
    html = _preview(operator, {"and": [{"segment": 999}]})
    assert "no segment 999" in html


def test_save_show_edit_and_delete(operator, world) -> None:
    saved = _save(operator, "抖音上海强意向未购", EXAMPLE_RULE)
    assert saved.status_code == 303, saved.text
    location = saved.headers["location"]
    segment_id = int(location.rsplit("/", 1)[1])
    page = operator.client.get(location)
    assert page.status_code == 200
    assert 'id="segment-count">1<' in page.text
    assert f'href="/console/contacts/{world.ids["张三"]}"' in page.text
    assert 'data-chart="series"' in page.text and "已保存" in page.text
    assert (
        "content.viewed（topic 等于 exam） 最近 7 天 ≥ 2 次" in page.text
    )  # the rule in words, in the console's language
    listing = operator.client.get("/console/segments")
    assert "抖音上海强意向未购" in listing.text and "<svg" in listing.text and "<polyline" in listing.text
    # the edit page has the rule; saving a looser rule changes the members
    edit = operator.client.get(f"/console/segments/{segment_id}/edit")
    assert edit.status_code == 200 and "intention_level" in edit.text
    looser = {"and": EXAMPLE_RULE["and"][1:3]}
    updated = _save(operator, "抖音上海", looser, path=f"/console/segments/{segment_id}")
    assert updated.status_code == 303
    page = operator.client.get(location)
    assert 'id="segment-count">4<' in page.text and "抖音上海" in page.text
    # a second segment built on the first: "in segment" with a NOT
    other = _save(
        operator,
        "上海非抖音",
        {"and": [{"attribute": "region", "op": "eq", "value": "上海"}, {"not": {"segment": segment_id}}]},
    )
    assert other.status_code == 303
    assert 'id="segment-count">1<' in operator.client.get(other.headers["location"]).text
    # the first cannot go while the second uses it; the second can
    refused = operator.post(f"/console/segments/{segment_id}/delete", {}, page="/console/segments")
    assert refused.status_code == 409 and "上海非抖音" in refused.text
    gone = operator.post(other.headers["location"] + "/delete", {}, page="/console/segments")
    assert gone.status_code == 303
    listing = operator.client.get("/console/segments").text
    assert "已删除" in listing and f'href="{other.headers["location"]}"' not in listing


def test_a_refused_save_keeps_what_was_typed(operator) -> None:
    bad = _save(operator, "坏规则", {"and": [{"attribute": "nickname", "op": "eq", "value": "x"}]})
    assert bad.status_code == 422
    assert "$.and[0].attribute" in bad.text and "unknown field" in bad.text and "坏规则" in bad.text
    assert "nickname" in bad.text  # the JSON is still in the advanced view
    nameless = _save(operator, "", EXAMPLE_RULE)
    assert nameless.status_code == 422 and "请给分群起个名字" in nameless.text
    assert _save(operator, "重名", EXAMPLE_RULE).status_code == 303
    twice = _save(operator, "重名", EXAMPLE_RULE)
    assert twice.status_code == 422 and "already exists" in twice.text


def test_members_are_paged(operator, db, world) -> None:
    with db.transaction() as session:
        principal = Principal(workspace_id=world.workspace_id, scopes=ALL_SCOPES, staff_id=None, role=Role.admin)
        for n in range(55):
            create_contact(
                session,
                principal,
                ContactCreate(
                    name=f"批量{n:02d}", region="杭州", identities=[IdentityIn(type="phone", value=f"1370013{n:04d}")]
                ),
                region="CN",
            )
    saved = _save(operator, "杭州", {"and": [{"attribute": "region", "op": "eq", "value": "杭州"}]})
    first = operator.client.get(saved.headers["location"])
    assert 'id="segment-count">55<' in first.text
    assert first.text.count('class="contact-link"') == 50
    following = re.search(r'href="([^"]+\?after=\d+)" id="members-next"', first.text).group(1)
    second = operator.client.get(following)
    assert second.text.count('class="contact-link"') == 5 and "members-next" not in second.text


def test_contact_page_shows_segments_scores_and_why(operator, world) -> None:
    segment_id = int(_save(operator, "强意向", EXAMPLE_RULE).headers["location"].rsplit("/", 1)[1])
    contact_id = world.ids["张三"]
    page = operator.client.get(f"/console/contacts/{contact_id}")
    assert page.status_code == 200
    assert 'id="user-model"' in page.text
    assert f'hx-get="/console/segments/{segment_id}/why/{contact_id}"' in page.text
    assert "已激活" in page.text and "强意向" in page.text and "42.5" in page.text
    # reasons are worked out on read from the contact's own events, not from what a run stored
    assert 'id="score-reasons"' in page.text and "viewed content 2 times" not in page.text
    why = operator.client.get(f"/console/segments/{segment_id}/why/{contact_id}", headers={"HX-Request": "true"})
    assert why.status_code == 200
    assert "符合" in why.text and why.text.count('class="met"') >= 5 and 'class="unmet"' not in why.text
    # someone not in it: the same question says which condition fails
    other = operator.client.get(f"/console/segments/{segment_id}/why/{world.ids['李四']}")
    assert 'class="unmet"' in other.text


def test_contact_page_without_scores_says_so_in_english(app, operator, db, world) -> None:
    with db.transaction() as session:
        session.query(ContactScore).delete()
    operator.client.cookies.set("siyu_lang", "en")
    page = operator.client.get(f"/console/contacts/{world.ids['张三']}")
    assert "Not computed yet." in page.text and "In no segment." in page.text
    builder = operator.client.get("/console/segments/new")
    assert "Live preview" in builder.text and "Segments" in builder.text


def test_a_consultant_previews_only_their_own_contacts(consultant, operator, world) -> None:
    assert _count(_preview(operator, {"and": [{"attribute": "region", "op": "eq", "value": "上海"}]})) == 5
    assert _count(_preview(consultant, {"and": [{"attribute": "region", "op": "eq", "value": "上海"}]})) == 0
    assert (
        consultant.post("/console/segments", {"name": "x", "rule": "{}"}, page="/console/segments").status_code == 403
    )


# --- in a real browser ------------------------------------------------------------------------------


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (make test installs it)")
def test_build_a_segment_in_the_builder(browser, server, world) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    context = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    _sign_in(page, server, then="/console/segments")
    page.click("#new-segment")
    page.wait_for_url("**/console/segments/new")
    page.locator("#preview [data-empty]").wait_for()
    page.fill("#segment-name", "抖音上海看考试两次")

    def wait_count(n: int) -> None:
        page.wait_for_function(
            f"(document.querySelector('#preview-count') || {{dataset: {{}}}}).dataset.count === '{n}'"
        )

    # condition 1: profile field source channel = douyin
    page.click("#builder .add-condition")
    row = page.locator("#builder .row-cond").nth(0)
    row.locator("select.field").select_option("source_channel")
    row.locator("input.value").fill("douyin")
    wait_count(5)
    # condition 2: region = 上海
    page.click("#builder .add-condition")
    row = page.locator("#builder .row-cond").nth(1)
    row.locator("input.value").fill("上海")
    wait_count(4)
    # condition 3: viewed exam content at least twice in the last 7 days
    page.click("#builder .add-condition")
    row = page.locator("#builder .row-cond").nth(2)
    row.locator("select.kind").select_option("event")
    row = page.locator("#builder .row-cond").nth(2)
    row.locator("input.event").fill("content.viewed")
    row.locator("input[type=number]").first.fill("2")
    row.locator(".add-where").click()
    row = page.locator("#builder .row-cond").nth(2)
    row.locator("input.prop").fill("topic")
    row.locator(".where input.value").fill("exam")
    wait_count(3)
    # a mistake is shown inline, on its row, with the reason (not a 500)
    row.locator("input.event").fill("viewed")
    page.locator("#preview [data-error-path='$.and[2].event']").wait_for()
    page.locator("#builder .row-cond.invalid").wait_for()
    row.locator("input.event").fill("content.viewed")
    wait_count(3)
    # condition 4: intention level = strong (computed)
    page.click("#builder > .group > .group-actions .add-condition")
    row = page.locator("#builder .row-cond").nth(3)
    row.locator("select.kind").select_option("computed")
    row = page.locator("#builder .row-cond").nth(3)
    row.locator("select.field").select_option("intention_level")
    row.locator("select.value").select_option("strong")
    wait_count(2)
    # a group: NOT (paid orders > 0 OR region = 北京)
    page.click("#builder > .group > .group-actions .add-group")
    group = page.locator("#builder .group.depth-1")
    group.locator("input.not").first.check()
    group = page.locator("#builder .group.depth-1")
    group.locator("select.combine").select_option("or")
    inner = page.locator("#builder .group.depth-1 .row-cond").nth(0)
    inner.locator("select.kind").select_option("computed")
    inner = page.locator("#builder .group.depth-1 .row-cond").nth(0)
    inner.locator("select.field").select_option("order_count")
    inner.locator("select.op").select_option("gt")
    inner.locator("input.value").fill("0")
    wait_count(1)
    assert "张三" in page.locator("#preview-sample").inner_text()
    # the advanced view says the same, as JSON
    rule = json.loads(page.locator("#rule-json").input_value())
    assert rule["and"][4] == {"not": {"or": [{"computed": "order_count", "op": "gt", "value": 0}]}}
    assert rule["and"][2]["where"] == [{"property": "topic", "op": "eq", "value": "exam"}]
    # editing the JSON redraws the builder: drop the NOT group
    page.click("#advanced summary")
    rule["and"] = rule["and"][:4]
    page.fill("#rule-json", json.dumps(rule))
    page.locator("#builder .group.depth-1").wait_for(state="detached")
    wait_count(2)
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "console-segment-builder.png"), full_page=True)
    page.click("#save-segment")
    page.wait_for_url(re.compile(r".*/console/segments/\d+$"))
    assert page.locator("#segment-count").inner_text() == "2"
    members = page.locator("#members").inner_text()
    assert "张三" in members and "王五" in members
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "console-segment.png"), full_page=True)
    # on a member's page: why they are in it
    page.locator("#members a", has_text="张三").click()
    page.wait_for_url("**/console/contacts/*")
    page.locator("#contact-segments summary").first.click()
    page.locator("#contact-segments .why-lines .met").first.wait_for()
    assert "content.viewed" in page.locator("#contact-segments").inner_text()
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "console-contact-segments.png"), full_page=True)
    context.close()


def test_the_trend_carries_sizes_over_days_without_a_refresh(operator, db, world) -> None:
    from siyu.segments.console import _trend
    from siyu.segments.models import SegmentSizeDay

    location = _save(operator, "上海", {"and": [{"attribute": "region", "op": "eq", "value": "上海"}]}).headers[
        "location"
    ]
    segment_id = int(location.rsplit("/", 1)[1])
    today = dt.date(2026, 11, 23)
    rows = [
        SegmentSizeDay(
            workspace_id=world.workspace_id, segment_id=segment_id, day=today - dt.timedelta(days=40), size=3
        ),
        SegmentSizeDay(
            workspace_id=world.workspace_id, segment_id=segment_id, day=today - dt.timedelta(days=10), size=4
        ),
        SegmentSizeDay(workspace_id=world.workspace_id, segment_id=segment_id, day=today, size=5),
    ]
    days, sizes = _trend(rows, today)
    assert len(days) == 30 and days[-1] == today
    assert sizes[:19] == [3] * 19 and sizes[19:29] == [4] * 10 and sizes[29] == 5
    assert _trend(rows[2:], today)[1] == [None] * 29 + [5]  # before it existed: nothing
    # the list draws the same from the database: a line through 30 points
    local_today = utcnow().astimezone(ZoneInfo("Asia/Shanghai")).date()
    with db.transaction() as session:
        for back, size in ((40, 1), (12, 2)):
            session.add(
                SegmentSizeDay(
                    workspace_id=world.workspace_id,
                    segment_id=segment_id,
                    day=local_today - dt.timedelta(days=back),
                    size=size,
                )
            )
    listing = operator.client.get("/console/segments").text
    points = re.search(r'<polyline[^>]*points="([^"]+)"', listing).group(1).split()
    assert len(points) == 30
    assert 'aria-label="1 → 5"' in listing
