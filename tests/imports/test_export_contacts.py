"""Export of filtered contact lists, and the round trip: export, import elsewhere, the same people."""

from __future__ import annotations

from pathlib import Path

from sheet_files import HEADERS, ROWS, read_csv, read_xlsx, upload, write_xlsx


def _people(client) -> dict[str, dict]:  # type: ignore[no-untyped-def,type-arg]
    items = client.get("/api/v1/contacts", params={"limit": 200}).json()["items"]
    out = {}
    for c in items:
        phone = next(i["value"] for i in c["identities"] if i["type"] == "phone")
        out[phone] = {
            "name": c["name"],
            "region": c["region"],
            "gender": c["gender"],
            "birthday": c["birthday"],
            "first_consult_at": c["first_consult_at"],
            "attributes": c["attributes"],
            "identities": sorted((i["type"], i["value"]) for i in c["identities"]),
            "tags": sorted(t["name"] for t in c["tags"]),
            "owner": c["owner_id"] is not None,
        }
    return out


def _setup(tenant) -> None:  # type: ignore[no-untyped-def]
    tenant.client.post("/api/v1/attributes", json={"key": "exam_year", "label": "报考年份", "type": "number"})
    tenant.as_staff("gu@brand.cn", name="顾问")


def test_export_then_import_into_another_workspace_gives_the_same_people(make_tenant, tmp_path: Path) -> None:
    a, b = make_tenant("A"), make_tenant("B")
    _setup(a)
    _setup(b)
    rows = [[*r, "GU@brand.cn", 2026 + n] for n, r in enumerate(ROWS)]
    created = upload(a.client, write_xlsx(tmp_path / "in.xlsx", [*HEADERS, "负责人", "报考年份"], rows))
    assert created.status_code == 201, created.text
    for file_format in ("csv", "xlsx"):
        response = a.client.get("/api/v1/contacts/export", params={"format": file_format})
        assert response.status_code == 200, response.text
        assert "contacts-" in response.headers["content-disposition"]
        exported = tmp_path / f"export.{file_format}"
        exported.write_bytes(response.content)
        table = read_csv(response.content) if file_format == "csv" else read_xlsx(response.content)
        header = list(table[0])
        assert header[:2] == ["id", "name"] and header[-4:] == ["tags", "owner", "owner_name", "created_at"]
        assert {"phone", "identity:wechat_id", "exam_year", "birthday"} <= set(header)
        assert len(table) == 4
        target = make_tenant(f"B-{file_format}")
        _setup(target)
        imported = upload(target.client, exported)
        assert imported.status_code == 201, imported.text
        assert imported.json()["created"] == 3
        assert _people(target.client) == _people(a.client)


def test_export_uses_the_list_filters_and_a_consultant_gets_their_own(tenant, tmp_path: Path) -> None:
    c = tenant.client
    staff_id, consultant = tenant.as_staff("gu@brand.cn", name="顾问")
    mine = c.post("/api/v1/contacts", json={"name": "我的", "owner_id": staff_id}).json()
    c.post("/api/v1/contacts", json={"name": "别人的"})
    group = c.post("/api/v1/tag-groups", json={"name": "组"}).json()
    tag = c.post("/api/v1/tags", json={"group_id": group["id"], "name": "VIP"}).json()
    c.post(f"/api/v1/contacts/{mine['id']}/tags", json={"add": [tag["id"]]})

    everyone = read_csv(c.get("/api/v1/contacts/export").content)
    assert [r[1] for r in everyone[1:]] == ["我的", "别人的"]
    tagged = read_csv(c.get("/api/v1/contacts/export", params={"tag": tag["id"]}).content)
    assert [r[1] for r in tagged[1:]] == ["我的"] and tagged[1][tagged[0].index("tags")] == "组:VIP"
    own = read_csv(consultant.get("/api/v1/contacts/export").content)
    assert [r[1] for r in own[1:]] == ["我的"] and own[1][own[0].index("owner")] == "gu@brand.cn"
    bad = c.get("/api/v1/contacts/export", params={"attr.nothing": "x"})
    assert bad.status_code == 422 and "unknown attribute" in bad.text
    assert c.get("/api/v1/contacts/export", params={"format": "pdf"}).status_code == 422
    # /contacts/export is its own route, not /contacts/{contact_id} with "export" as an id.
    assert (
        c.get("/api/v1/contacts/export", params={"format": "xlsx"})
        .headers["content-type"]
        .startswith("application/vnd.openxmlformats")
    )


def test_export_needs_contacts_read(make_tenant) -> None:
    from siyu.auth.scopes import Scope

    narrow = make_tenant("N", scopes=frozenset({Scope.tags_read}))
    denied = narrow.client.get("/api/v1/contacts/export")
    assert denied.status_code == 403 and "contacts:read" in denied.text
