"""Rule-based smart tags: add on match, remove when unmatched, exclusive groups, running now, isolation."""

from __future__ import annotations

from smarttag_helpers import NOW, history, make_contact, make_smart_tag, make_tag, mounted, tag_names

from siyu.smarttags.service import apply_rule_tags

SHANGHAI = {"attribute": "region", "op": "eq", "value": "上海"}


def _apply(db, workspace_id: int, among=None) -> set[int]:  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        return apply_rule_tags(session, workspace_id, among=among, now=NOW)


def test_matching_contacts_get_the_tag_and_history_names_the_rule(tenant, db) -> None:
    c = mounted(tenant.client)
    tag_id = make_tag(c, "上海客户")
    rule = make_smart_tag(c, name="上海", tag_id=tag_id, kind="rule", rule=SHANGHAI)
    shanghai, beijing = make_contact(c, region="上海"), make_contact(c, region="北京")
    assert _apply(db, tenant.workspace_id) == {shanghai}
    assert _apply(db, tenant.workspace_id) == set()  # nothing left to do
    assert tag_names(c, shanghai) == {"上海客户"} and tag_names(c, beijing) == set()
    assert history(c, shanghai) == [("上海客户", "added", "rule", f'smart tag rule "上海" (#{rule["id"]})')]
    after = c.get(f"/api/v1/smart-tags/{rule['id']}").json()
    assert after["added_total"] == 1 and after["last_run_at"] is not None and after["last_error"] is None


def test_remove_when_unmatched_takes_the_tag_off_only_if_asked(tenant, db) -> None:
    c = mounted(tenant.client)
    sticky, live = make_tag(c, "曾在上海"), make_tag(c, "在上海")
    make_smart_tag(c, name="曾在上海", tag_id=sticky, kind="rule", rule=SHANGHAI)
    make_smart_tag(c, name="在上海", tag_id=live, kind="rule", rule=SHANGHAI, remove_when_unmatched=True)
    mover, stayer = make_contact(c, region="上海"), make_contact(c, region="上海")
    _apply(db, tenant.workspace_id)
    c.patch(f"/api/v1/contacts/{mover}", json={"region": "杭州"})
    # only the contacts that changed are looked at, and only those lose the tag
    assert _apply(db, tenant.workspace_id, among=[mover]) == {mover}
    assert tag_names(c, mover) == {"曾在上海"}
    assert tag_names(c, stayer) == {"曾在上海", "在上海"}
    assert history(c, mover)[-1][:3] == ("在上海", "removed", "rule")


def test_remove_when_unmatched_also_takes_off_a_tag_put_on_by_hand(tenant, db) -> None:
    c = mounted(tenant.client)
    tag_id = make_tag(c, "在上海")
    make_smart_tag(c, name="在上海", tag_id=tag_id, kind="rule", rule=SHANGHAI, remove_when_unmatched=True)
    beijing = make_contact(c, region="北京")
    c.post(f"/api/v1/contacts/{beijing}/tags", json={"add": [tag_id]})
    unrelated = make_contact(c, region="北京")
    assert _apply(db, tenant.workspace_id, among=[unrelated]) == set()  # not among: left alone
    assert _apply(db, tenant.workspace_id) == {beijing}
    assert tag_names(c, beijing) == set()


def test_exclusive_group_first_rule_wins_and_nothing_flips(tenant, db) -> None:
    c = mounted(tenant.client)
    strong = make_tag(c, "A-强意向", "意向", exclusive=True)
    weak = make_tag(c, "B-弱意向", "意向")
    make_smart_tag(c, name="强", tag_id=strong, kind="rule", rule=SHANGHAI, remove_when_unmatched=True)
    make_smart_tag(
        c,
        name="弱",
        tag_id=weak,
        kind="rule",
        rule={"attribute": "occupation", "op": "eq", "value": "学生"},
        remove_when_unmatched=True,
    )
    both = make_contact(c, region="上海", occupation="学生")
    student = make_contact(c, region="北京", occupation="学生")
    manual = make_contact(c, region="上海")
    c.post(f"/api/v1/contacts/{manual}/tags", json={"add": [weak]})
    assert _apply(db, tenant.workspace_id) == {both, student, manual}
    assert tag_names(c, both) == {"A-强意向"}
    assert tag_names(c, student) == {"B-弱意向"}
    assert tag_names(c, manual) == {"A-强意向"}
    assert ("B-弱意向", "removed", "exclusive", "replaced by 'A-强意向' (exclusive group)") in history(c, manual)
    for _ in range(2):
        assert _apply(db, tenant.workspace_id) == set()


def test_a_rule_reading_another_smart_tags_tag_runs_after_it(tenant, db) -> None:
    c = mounted(tenant.client)
    local, vip = make_tag(c, "上海"), make_tag(c, "上海学生")
    # saved first, but reads the tag the second rule puts on
    make_smart_tag(
        c,
        name="上海学生",
        tag_id=vip,
        kind="rule",
        rule={"and": [{"tags": [local]}, {"attribute": "occupation", "op": "eq", "value": "学生"}]},
    )
    make_smart_tag(c, name="上海", tag_id=local, kind="rule", rule=SHANGHAI)
    contact = make_contact(c, region="上海", occupation="学生")
    assert _apply(db, tenant.workspace_id) == {contact}
    assert tag_names(c, contact) == {"上海", "上海学生"}


def test_run_now_returns_counts(tenant) -> None:
    c = mounted(tenant.client)
    tag_id = make_tag(c, "在上海")
    rule = make_smart_tag(c, name="在上海", tag_id=tag_id, kind="rule", rule=SHANGHAI, remove_when_unmatched=True)
    make_contact(c, region="上海")
    make_contact(c, region="上海")
    held = make_contact(c, region="北京")
    c.post(f"/api/v1/contacts/{held}/tags", json={"add": [tag_id]})
    ran = c.post(f"/api/v1/smart-tags/{rule['id']}/run")
    assert ran.status_code == 200, ran.text
    assert ran.json() == {"smart_tag_id": rule["id"], "added": 2, "removed": 1}
    assert c.post(f"/api/v1/smart-tags/{rule['id']}/run").json() == {
        "smart_tag_id": rule["id"],
        "added": 0,
        "removed": 0,
    }
    keywords = make_smart_tag(c, name="问价", tag_id=tag_id, kind="keywords", keywords=["多少钱"])
    refused = c.post(f"/api/v1/smart-tags/{keywords['id']}/run")
    assert refused.status_code == 409 and "keywords/test" in refused.json()["error"]["message"]


def test_a_rule_whose_tag_reference_was_deleted_is_skipped_and_says_why(tenant, db) -> None:
    c = mounted(tenant.client)
    target, gone = make_tag(c, "目标"), make_tag(c, "将删除")
    rule = make_smart_tag(c, name="依赖", tag_id=target, kind="rule", rule={"tags": [gone]})
    assert c.delete(f"/api/v1/tags/{gone}").status_code == 204
    assert _apply(db, tenant.workspace_id) == set()
    assert f"no tag {gone}" in c.get(f"/api/v1/smart-tags/{rule['id']}").json()["last_error"]
    ran = c.post(f"/api/v1/smart-tags/{rule['id']}/run")
    assert ran.status_code == 422 and ran.json()["error"]["details"][0]["path"] == "$.tags[0]"


def test_rules_stay_in_their_workspace(make_tenant, db) -> None:
    a, b = make_tenant("A"), make_tenant("B")
    ca, cb = mounted(a.client), mounted(b.client)
    make_smart_tag(ca, name="上海", tag_id=make_tag(ca, "上海"), kind="rule", rule=SHANGHAI)
    b_contact = make_contact(cb, region="上海")
    assert _apply(db, a.workspace_id) == set()
    assert _apply(db, a.workspace_id, among=[b_contact]) == set()
    assert tag_names(cb, b_contact) == set()
