"""Contacts through the API: create, identities, look-up, update, attributes, list filters, notes."""

from __future__ import annotations


def test_create_get_and_look_up_by_any_identity(tenant) -> None:
    created = tenant.client.post(
        "/api/v1/contacts",
        json={
            "name": "王小明",
            "region": "上海",
            "gender": "male",
            "birthday": "1990-05-04",
            "identities": [
                {"type": "phone", "value": "138 0013 8000"},
                {"type": "wecom_external_userid", "value": "wmABC"},
            ],
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert {(i["type"], i["value"]) for i in body["identities"]} == {
        ("phone", "+8613800138000"),
        ("wecom_external_userid", "wmABC"),
    }
    got = tenant.client.get(f"/api/v1/contacts/{body['id']}").json()
    assert got["name"] == "王小明" and got["region"] == "上海"
    # The same phone typed another way finds the same person.
    for phone in ("+86 138-0013-8000", "13800138000"):
        found = tenant.client.get("/api/v1/contacts/lookup", params={"type": "phone", "value": phone})
        assert found.status_code == 200 and found.json()["id"] == body["id"]
    missing = tenant.client.get("/api/v1/contacts/lookup", params={"type": "email", "value": "a@b.cn"})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_an_identity_belongs_to_one_contact(tenant) -> None:
    first = tenant.client.post("/api/v1/contacts", json={"identities": [{"type": "phone", "value": "13800138000"}]})
    second = tenant.client.post("/api/v1/contacts", json={"identities": [{"type": "phone", "value": "+8613800138000"}]})
    assert second.status_code == 409
    assert f"contact {first.json()['id']}" in second.json()["error"]["message"]


def test_bad_identities_are_named(tenant) -> None:
    response = tenant.client.post(
        "/api/v1/contacts",
        json={"identities": [{"type": "phone", "value": "12345"}, {"type": "Bad Type!", "value": "x"}]},
    )
    assert response.status_code == 422
    fields = [d["field"] for d in response.json()["error"]["details"]]
    assert fields == ["identities[0]", "identities[1]"]


def test_custom_attributes_are_declared_typed_and_validated(tenant) -> None:
    c = tenant.client
    assert (
        c.post("/api/v1/attributes", json={"key": "exam_year", "label": "报考年份", "type": "number"}).status_code
        == 201
    )
    assert (
        c.post(
            "/api/v1/attributes", json={"key": "level", "label": "学历", "type": "choice", "choices": ["本科", "硕士"]}
        ).status_code
        == 201
    )
    assert c.post("/api/v1/attributes", json={"key": "exam_date", "label": "考试日", "type": "date"}).status_code == 201
    no_choices = c.post("/api/v1/attributes", json={"key": "x", "label": "x", "type": "choice"})
    assert no_choices.status_code == 422 and "choices" in no_choices.json()["error"]["message"]

    bad = c.post(
        "/api/v1/contacts",
        json={"attributes": {"exam_year": "next year", "level": "博士", "exam_date": "2026-13-01", "shoe": 42}},
    )
    assert bad.status_code == 422
    reasons = {d["field"]: d["reason"] for d in bad.json()["error"]["details"]}
    assert set(reasons) == {"attributes.exam_year", "attributes.level", "attributes.exam_date", "attributes.shoe"}
    assert "本科" in reasons["attributes.level"] and "not declared" in reasons["attributes.shoe"]

    ok = c.post(
        "/api/v1/contacts", json={"attributes": {"exam_year": 2027, "level": "本科", "exam_date": "2027-04-10"}}
    )
    assert ok.status_code == 201
    contact_id = ok.json()["id"]
    patched = c.patch(f"/api/v1/contacts/{contact_id}", json={"attributes": {"level": None, "exam_year": 2028}})
    assert patched.json()["attributes"] == {"exam_year": 2028, "exam_date": "2027-04-10"}
    listed = c.get("/api/v1/contacts", params={"attr.exam_year": "2028"}).json()["items"]
    assert [x["id"] for x in listed] == [contact_id]
    assert c.get("/api/v1/contacts", params={"attr.exam_year": "2027"}).json()["items"] == []
    unknown = c.get("/api/v1/contacts", params={"attr.nope": "1"})
    assert unknown.status_code == 422 and "attr.nope" in unknown.json()["error"]["message"]


def test_list_filters_and_cursor_pagination(tenant) -> None:
    c = tenant.client
    group = c.post("/api/v1/tag-groups", json={"name": "兴趣"}).json()
    tag = c.post("/api/v1/tags", json={"group_id": group["id"], "name": "考研"}).json()
    ids = []
    for i in range(7):
        body = {"name": f"客户{i}", "source_channel": "douyin" if i % 2 else "xiaohongshu"}
        body["identities"] = [{"type": "email", "value": f"u{i}@example.com"}]
        ids.append(c.post("/api/v1/contacts", json=body).json()["id"])
    for contact_id in ids[:5]:
        assert c.post(f"/api/v1/contacts/{contact_id}/tags", json={"add": [tag["id"]]}).status_code == 200

    seen, cursor = [], None
    while True:
        params = {"tag": tag["id"], "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = c.get("/api/v1/contacts", params=params).json()
        seen += [x["id"] for x in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids[:5], reverse=True)

    douyin = c.get("/api/v1/contacts", params={"source_channel": "douyin", "tag": tag["id"]}).json()["items"]
    assert sorted(x["id"] for x in douyin) == [ids[1], ids[3]]
    by_identity = c.get("/api/v1/contacts", params={"identity": "email:U3@example.com"}).json()["items"]
    assert [x["id"] for x in by_identity] == [ids[3]]
    assert c.get("/api/v1/contacts", params={"cursor": "garbage"}).status_code == 422
    assert c.get("/api/v1/contacts", params={"colour": "red"}).status_code == 422


def test_created_time_filter(tenant, clock) -> None:
    c = tenant.client
    early = c.post("/api/v1/contacts", json={"name": "早"}).json()["id"]
    clock.advance(days=2)
    late = c.post("/api/v1/contacts", json={"name": "晚"}).json()["id"]
    after = (clock.now.replace(hour=0)).isoformat()
    assert [x["id"] for x in c.get("/api/v1/contacts", params={"created_after": after}).json()["items"]] == [late]
    assert [x["id"] for x in c.get("/api/v1/contacts", params={"created_before": after}).json()["items"]] == [early]


def test_notes_and_owner(tenant) -> None:
    c = tenant.client
    staff_id, _ = tenant.as_staff("owner@brand.cn", name="李顾问")
    contact = c.post("/api/v1/contacts", json={"name": "张三", "owner_id": staff_id}).json()
    assert contact["owner_id"] == staff_id
    assert (
        c.post(f"/api/v1/contacts/{contact['id']}/notes", json={"body": "想报考在职研究生,预算两万"}).status_code == 201
    )
    notes = c.get(f"/api/v1/contacts/{contact['id']}/notes").json()
    assert notes[0]["body"] == "想报考在职研究生,预算两万"
    assert c.get("/api/v1/contacts", params={"owner_id": staff_id}).json()["items"][0]["id"] == contact["id"]
    bad_owner = c.patch(f"/api/v1/contacts/{contact['id']}", json={"owner_id": 999999})
    assert bad_owner.status_code == 422 and "owner_id" in bad_owner.json()["error"]["message"]
    unowned = c.patch(f"/api/v1/contacts/{contact['id']}", json={"owner_id": None}).json()
    assert unowned["owner_id"] is None
    assert [x["id"] for x in c.get("/api/v1/contacts", params={"unowned": "true"}).json()["items"]] == [contact["id"]]


def test_consultant_sees_and_changes_only_their_own_contacts(tenant) -> None:
    c = tenant.client
    mine_id, consultant = tenant.as_staff("mine@brand.cn")
    other_id, _ = tenant.as_staff("other@brand.cn")
    mine = c.post("/api/v1/contacts", json={"name": "我的", "owner_id": mine_id}).json()
    theirs = c.post("/api/v1/contacts", json={"name": "别人的", "owner_id": other_id}).json()
    listed = consultant.get("/api/v1/contacts").json()["items"]
    assert [x["id"] for x in listed] == [mine["id"]]
    assert consultant.get(f"/api/v1/contacts/{theirs['id']}").status_code == 404
    assert consultant.patch(f"/api/v1/contacts/{theirs['id']}", json={"name": "x"}).status_code == 404
    assert consultant.post(f"/api/v1/contacts/{theirs['id']}/notes", json={"body": "x"}).status_code == 404
    assert consultant.patch(f"/api/v1/contacts/{mine['id']}", json={"region": "杭州"}).status_code == 200
    handover = consultant.patch(f"/api/v1/contacts/{mine['id']}", json={"owner_id": other_id})
    assert handover.status_code == 403
    created = consultant.post("/api/v1/contacts", json={"name": "新客户"}).json()
    assert created["owner_id"] == mine_id
    # Staff and key administration is not a consultant's.
    assert consultant.post("/api/v1/staff", json={"email": "x@y.cn", "name": "x", "role": "admin"}).status_code == 403
    assert consultant.get("/api/v1/events").status_code == 422
    assert c.get(f"/api/v1/contacts/{theirs['id']}").json()["name"] == "别人的"


def test_filtering_by_several_tags_means_all_of_them(tenant) -> None:
    c = tenant.client
    group = c.post("/api/v1/tag-groups", json={"name": "多标签"}).json()
    common, rare, other = (
        c.post("/api/v1/tags", json={"group_id": group["id"], "name": n}).json()["id"] for n in ("常见", "少见", "其他")
    )
    ids = [c.post("/api/v1/contacts", json={}).json()["id"] for _ in range(8)]
    for n, contact_id in enumerate(ids):
        add = [common] + ([rare] if n % 3 == 0 else []) + ([other] if n % 2 == 0 else [])
        c.post(f"/api/v1/contacts/{contact_id}/tags", json={"add": add})
    both = c.get("/api/v1/contacts", params=[("tag", common), ("tag", rare)]).json()["items"]
    assert [x["id"] for x in both] == [ids[6], ids[3], ids[0]]
    three = c.get("/api/v1/contacts", params=[("tag", other), ("tag", rare), ("tag", common)]).json()["items"]
    assert [x["id"] for x in three] == [ids[6], ids[0]]
    paged = c.get("/api/v1/contacts", params=[("tag", common), ("tag", rare), ("limit", 2)]).json()
    rest = c.get("/api/v1/contacts", params=[("tag", common), ("tag", rare), ("cursor", paged["next_cursor"])]).json()
    assert [x["id"] for x in paged["items"] + rest["items"]] == [ids[6], ids[3], ids[0]]


def test_contact_time_zone_is_checked_and_kept(tenant) -> None:  # type: ignore[no-untyped-def]
    c = tenant.client
    bad = c.post("/api/v1/contacts", json={"name": "x", "timezone": "Mars/Olympus"})
    assert bad.status_code == 422
    assert "unknown time zone 'Mars/Olympus'" in bad.text and "timezone" in bad.text
    made = c.post("/api/v1/contacts", json={"name": "x", "timezone": "America/New_York"})
    assert made.status_code == 201, made.text
    assert made.json()["timezone"] == "America/New_York"
    changed = c.patch(f"/api/v1/contacts/{made.json()['id']}", json={"timezone": None})
    assert changed.status_code == 200 and changed.json()["timezone"] is None
