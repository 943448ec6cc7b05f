"""Merging a tag into another: holders move, every change is recorded, the source is gone."""

from __future__ import annotations


def test_merge_moves_holders_records_and_deletes(tenant) -> None:
    c = tenant.client
    group = c.post("/api/v1/tag-groups", json={"name": "兴趣"}).json()
    typo = c.post("/api/v1/tags", json={"group_id": group["id"], "name": "考妍"}).json()
    right = c.post("/api/v1/tags", json={"group_id": group["id"], "name": "考研"}).json()
    ids = [c.post("/api/v1/contacts", json={"name": f"客户{i}"}).json()["id"] for i in range(3)]
    c.post("/api/v1/contacts/bulk/tags", json={"add": [typo["id"]], "selection": {"contact_ids": ids}})
    c.post(f"/api/v1/contacts/{ids[0]}/tags", json={"add": [right["id"]]})
    merged = c.post(f"/api/v1/tags/{typo['id']}/merge", json={"into_tag_id": right["id"]})
    assert merged.status_code == 200, merged.text
    assert merged.json()["contacts"] == 3 and merged.json()["added"] == 2
    assert merged.json()["into"]["name"] == "考研"
    counts = {t["name"]: t["contacts"] for t in c.get("/api/v1/tags").json()}
    assert counts == {"考研": 3}
    history = c.get(f"/api/v1/contacts/{ids[1]}/tag-history").json()
    latest = {(h["tag_name"], h["action"], h["reason"]) for h in history[:2]}
    assert latest == {
        ("考妍", "removed", "tag '考妍' merged into '考研'"),
        ("考研", "added", "tag '考妍' merged into '考研'"),
    }
    gone = c.post(f"/api/v1/tags/{typo['id']}/merge", json={"into_tag_id": right["id"]})
    assert gone.status_code == 404


def test_merge_into_itself_or_another_workspace_is_refused(tenant, make_tenant) -> None:
    c = tenant.client
    group = c.post("/api/v1/tag-groups", json={"name": "g"}).json()
    tag = c.post("/api/v1/tags", json={"group_id": group["id"], "name": "t"}).json()
    itself = c.post(f"/api/v1/tags/{tag['id']}/merge", json={"into_tag_id": tag["id"]})
    assert itself.status_code == 422 and "into_tag_id" in itself.json()["error"]["message"]
    other = make_tenant("B").client
    og = other.post("/api/v1/tag-groups", json={"name": "g"}).json()
    ot = other.post("/api/v1/tags", json={"group_id": og["id"], "name": "t"}).json()
    assert c.post(f"/api/v1/tags/{tag['id']}/merge", json={"into_tag_id": ot["id"]}).status_code == 404
