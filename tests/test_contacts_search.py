"""Contact search (`q`), creation-order sort, and handing contacts over (bulk owner change)."""

from __future__ import annotations

from siyu.staff.models import Role


def _names(response) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    return [c["name"] for c in response.json()["items"]]


def _seed(c):  # type: ignore[no-untyped-def]
    ids = {}
    for name, identities in [
        ("王小明", [{"type": "phone", "value": "13800138000"}]),
        ("王大锤", [{"type": "email", "value": "DaChui@Example.com"}]),
        ("李雷", [{"type": "member_no", "value": "VIP-0042"}]),
        ("韩梅梅", []),
        ("小王", []),
    ]:
        ids[name] = c.post("/api/v1/contacts", json={"name": name, "identities": identities}).json()["id"]
    c.post(f"/api/v1/contacts/{ids['韩梅梅']}/notes", json={"body": "她问了考研英语的学费, 100% 想报名"})
    return ids


def test_search_by_name_prefix_identity_and_note(tenant) -> None:
    c = tenant.client
    _seed(c)
    assert _names(c.get("/api/v1/contacts", params={"q": "王"})) == ["王大锤", "王小明"]  # prefix, not 小王
    assert _names(c.get("/api/v1/contacts", params={"q": "138 0013 8000"})) == ["王小明"]  # phone normalised
    assert _names(c.get("/api/v1/contacts", params={"q": "+8613800138000"})) == ["王小明"]
    assert _names(c.get("/api/v1/contacts", params={"q": "dachui@example.com"})) == ["王大锤"]
    assert _names(c.get("/api/v1/contacts", params={"q": "VIP-0042"})) == ["李雷"]  # a custom identity type
    assert _names(c.get("/api/v1/contacts", params={"q": "VIP-004"})) == []  # identities match exactly
    assert _names(c.get("/api/v1/contacts", params={"q": "考研英语"})) == ["韩梅梅"]  # note text
    assert _names(c.get("/api/v1/contacts", params={"q": "100%"})) == ["韩梅梅"]  # wildcards are literal
    assert _names(c.get("/api/v1/contacts", params={"q": "_"})) == []
    assert _names(c.get("/api/v1/contacts", params={"q": "*"})) == []
    assert len(_names(c.get("/api/v1/contacts", params={"q": "  "}))) == 5  # blank: no search
    too_long = c.get("/api/v1/contacts", params={"q": "x" * 101})
    assert too_long.status_code == 422 and "q:" in too_long.json()["error"]["message"]


def test_search_combines_with_filters_and_pages(tenant) -> None:
    c = tenant.client
    for i in range(5):
        c.post("/api/v1/contacts", json={"name": f"张{i}", "source_channel": "douyin" if i % 2 else "zhihu"})
    assert _names(c.get("/api/v1/contacts", params={"q": "张", "source_channel": "douyin"})) == ["张3", "张1"]
    first = c.get("/api/v1/contacts", params={"q": "张", "limit": 2}).json()
    assert [x["name"] for x in first["items"]] == ["张4", "张3"]
    second = c.get("/api/v1/contacts", params={"q": "张", "limit": 2, "cursor": first["next_cursor"]}).json()
    assert [x["name"] for x in second["items"]] == ["张2", "张1"]
    oldest = c.get("/api/v1/contacts", params={"q": "张", "limit": 2, "sort": "oldest"}).json()
    assert [x["name"] for x in oldest["items"]] == ["张0", "张1"]
    more = c.get("/api/v1/contacts", params={"q": "张", "limit": 2, "sort": "oldest", "cursor": oldest["next_cursor"]})
    assert _names(more) == ["张2", "张3"]
    assert c.get("/api/v1/contacts", params={"sort": "sideways"}).status_code == 422


def test_consultant_search_sees_only_their_own(tenant) -> None:
    c = tenant.client
    staff_id, consultant = tenant.as_staff("c@brand.cn", role=Role.consultant)
    c.post("/api/v1/contacts", json={"name": "王自己", "owner_id": staff_id})
    c.post("/api/v1/contacts", json={"name": "王别人"})
    assert _names(consultant.get("/api/v1/contacts", params={"q": "王"})) == ["王自己"]


def test_bulk_owner_hands_a_leaving_staff_members_contacts_over(tenant) -> None:
    c = tenant.client
    leaving, _ = tenant.as_staff("leaving@brand.cn", role=Role.consultant, name="离职顾问")
    heir, heir_client = tenant.as_staff("heir@brand.cn", role=Role.consultant, name="接手顾问")
    theirs = [c.post("/api/v1/contacts", json={"name": f"客户{i}", "owner_id": leaving}).json()["id"] for i in range(3)]
    other = c.post("/api/v1/contacts", json={"name": "别人的"}).json()["id"]
    body = {"selection": {"filter": {"owner_id": str(leaving)}}, "owner_id": heir, "reason": "离职继承"}
    result = c.post("/api/v1/contacts/bulk/owner", json=body)
    assert result.status_code == 200, result.text
    assert result.json() == {"matched": 3, "changed": 3}
    assert sorted(x["id"] for x in heir_client.get("/api/v1/contacts").json()["items"]) == sorted(theirs)
    assert c.get(f"/api/v1/contacts/{other}").json()["owner_id"] is None
    timeline = c.get(f"/api/v1/contacts/{theirs[0]}/timeline").json()["items"]
    handover = [e for e in timeline if e["kind"] == "owner_change"]
    assert len(handover) == 1
    assert handover[0]["data"]["from_staff_id"] == leaving and handover[0]["data"]["to_staff_id"] == heir
    assert handover[0]["data"]["reason"] == "离职继承"
    again = c.post("/api/v1/contacts/bulk/owner", json={"selection": {"contact_ids": theirs}, "owner_id": heir})
    assert again.json() == {"matched": 3, "changed": 0}  # nothing to record twice
    unassign = c.post("/api/v1/contacts/bulk/owner", json={"selection": {"contact_ids": theirs[:1]}, "owner_id": None})
    assert unassign.json() == {"matched": 1, "changed": 1}


def test_bulk_owner_refuses_consultants_and_unknown_staff(tenant) -> None:
    c = tenant.client
    staff_id, consultant = tenant.as_staff("c@brand.cn", role=Role.consultant)
    mine = c.post("/api/v1/contacts", json={"owner_id": staff_id}).json()["id"]
    body = {"selection": {"contact_ids": [mine]}, "owner_id": staff_id}
    refused = consultant.post("/api/v1/contacts/bulk/owner", json=body)
    assert refused.status_code == 403 and "consultant" in refused.json()["error"]["message"]
    unknown = c.post("/api/v1/contacts/bulk/owner", json={**body, "owner_id": 999999})
    assert unknown.status_code == 422 and "owner_id" in unknown.json()["error"]["message"]
    neither = c.post("/api/v1/contacts/bulk/owner", json={"selection": {}, "owner_id": staff_id})
    assert neither.status_code == 422


def test_one_contacts_owner_change_is_on_its_timeline(tenant) -> None:
    c = tenant.client
    staff_id, _ = tenant.as_staff("o@brand.cn", role=Role.operator)
    contact = c.post("/api/v1/contacts", json={"name": "x"}).json()["id"]
    c.patch(f"/api/v1/contacts/{contact}", json={"owner_id": staff_id})
    c.patch(f"/api/v1/contacts/{contact}", json={"owner_id": staff_id, "name": "y"})
    kinds = [e["kind"] for e in c.get(f"/api/v1/contacts/{contact}/timeline").json()["items"]]
    assert kinds.count("owner_change") == 1


def test_broad_and_narrow_search_plans_give_the_same_pages(tenant, monkeypatch) -> None:
    """A search with many matches scans in id order and tests each row; one with few collects its
    matches first. Both must page through exactly the same contacts."""
    from siyu.contacts import repository

    c = tenant.client
    for i in range(12):
        body = {"name": f"王{i}" if i % 3 else f"李{i}", "identities": [{"type": "phone", "value": f"1380013{i:04d}"}]}
        contact = c.post("/api/v1/contacts", json=body).json()
        if i % 4 == 0:
            c.post(f"/api/v1/contacts/{contact['id']}/notes", json={"body": "想报考王牌课程"})

    def pages(q: str) -> list[int]:
        seen: list[int] = []
        cursor = None
        while True:
            params = {"q": q, "limit": 2, **({"cursor": cursor} if cursor else {})}
            page = c.get("/api/v1/contacts", params=params).json()
            seen += [x["id"] for x in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return seen

    queries = ["王", "王1", "李", "王牌", "13800130007", "nobody"]
    narrow = {q: pages(q) for q in queries}
    monkeypatch.setattr(repository, "NARROW_SEARCH", 1)  # every search with a match counts as broad
    broad = {q: pages(q) for q in queries}
    assert broad == narrow
    assert len(narrow["王"]) == 8 + 1  # eight 王 names, and 李0's note mentions 王牌
    assert narrow["nobody"] == []
