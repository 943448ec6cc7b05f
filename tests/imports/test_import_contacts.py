"""Importing a customer sheet: all or nothing, skipping bad rows, the error file, dedupe by identity,
tags, attributes and owners."""

from __future__ import annotations

from pathlib import Path

from sheet_files import HEADERS, ROWS, read_csv, read_xlsx, upload, write_csv, write_xlsx
from sqlalchemy import func, select

from siyu.auth.scopes import Scope
from siyu.contacts.models import Contact, Note
from siyu.staff.models import Role
from siyu.tags.models import TagChange


def _count(db, model, workspace_id: int) -> int:  # type: ignore[no-untyped-def]
    with db.transaction(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(model).where(model.workspace_id == workspace_id)))


def _lookup(client, phone: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    response = client.get("/api/v1/contacts/lookup", params={"type": "phone", "value": phone})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_sheet_is_imported_with_profile_identities_notes_and_tags(tenant, db, tmp_path: Path) -> None:
    c = tenant.client
    group = c.post("/api/v1/tag-groups", json={"name": "意向", "exclusive": True}).json()
    c.post("/api/v1/tags", json={"group_id": group["id"], "name": "A级"})
    response = upload(c, write_xlsx(tmp_path / "客户.xlsx", HEADERS, ROWS))
    assert response.status_code == 201, response.text
    summary = response.json()
    assert summary["status"] == "completed" and summary["rows"] == 3
    assert (summary["created"], summary["updated"], summary["skipped"], summary["errors"]) == (3, 0, 0, 0)
    assert summary["tags_created"] == 2 and summary["error_file"] is None and summary["file_name"] == "客户.xlsx"
    zhang = _lookup(c, "13800138000")
    assert zhang["name"] == "张三" and zhang["region"] == "北京" and zhang["occupation"] == "电商运营"
    assert zhang["gender"] == "male" and zhang["birthday"] == "1990-05-01" and zhang["source_channel"] == "抖音"
    assert zhang["first_consult_at"].startswith("2026-11-01T02:30") and zhang["consult_question"] == "报考条件是什么"
    assert {(i["type"], i["value"]) for i in zhang["identities"]} == {
        ("phone", "+8613800138000"),
        ("wechat_id", "zhangsan88"),
    }
    assert sorted(t["name"] for t in zhang["tags"]) == ["A级", "老客户"]
    notes = c.get(f"/api/v1/contacts/{zhang['id']}/notes").json()
    assert [n["body"] for n in notes] == ["想考三级"]
    history = c.get(f"/api/v1/contacts/{zhang['id']}/tag-history").json()
    assert {h["source"] for h in history} == {"import"} and all("客户.xlsx" in h["reason"] for h in history)
    groups = {g["name"] for g in c.get("/api/v1/tag-groups").json()}
    assert "导入/Imported" in groups
    wang = _lookup(c, "13700137000")
    assert wang["birthday"] is None and wang["gender"] == "unknown"
    with db.transaction(write=False) as session:
        assert session.scalar(select(Contact.birthday_mmdd).where(Contact.id == wang["id"])) == 501
    listed = c.get("/api/v1/imports").json()
    assert [i["id"] for i in listed] == [summary["id"]]
    assert c.get(f"/api/v1/imports/{summary['id']}").json()["created"] == 3


def test_one_bad_row_refuses_the_file_and_the_error_file_says_why(tenant, db, tmp_path: Path) -> None:
    c = tenant.client
    rows = [*ROWS, ["坏人", "12345", None, None, None, "男", "1990-02-30", None, None, None, None, None]]
    path = write_csv(tmp_path / "客户.csv", HEADERS, rows, encoding="gbk")
    response = upload(c, path)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "import_refused" and "1 of 4 rows have problems" in error["message"]
    assert error["details"][0]["row"] == 5 and "12345" in error["details"][0]["reason"]
    summary = error["import"]
    assert summary["status"] == "refused" and summary["created"] == 0 and summary["encoding"] == "gb18030"
    assert _count(db, Contact, tenant.workspace_id) == 0
    assert c.get("/api/v1/tag-groups").json() == []

    csv_file = c.get(summary["error_file"])
    assert csv_file.status_code == 200 and csv_file.headers["content-type"].startswith("text/csv")
    assert (
        "客户-errors.csv" in csv_file.headers["content-disposition"]
        or "filename*" in csv_file.headers["content-disposition"]
    )
    table = read_csv(csv_file.content)
    assert table[0] == [*HEADERS, "row", "error"]
    assert table[1][:2] == ["坏人", "12345"] and table[1][-2] == "5"
    assert "手机号: '12345' is not a valid phone number" in table[1][-1]
    assert "生日: '1990-02-30' is not a real date" in table[1][-1]
    xlsx = read_xlsx(c.get(summary["error_file"], params={"format": "xlsx"}).content)
    assert xlsx[0][-2:] == ("row", "error") or list(xlsx[0][-2:]) == ["row", "error"]
    assert list(xlsx[1])[-2] == 5

    skipped = upload(c, path, skip_bad_rows=True)
    assert skipped.status_code == 201, skipped.text
    result = skipped.json()
    assert (result["created"], result["skipped"], result["errors"]) == (3, 1, 1)
    assert result["error_file"] == f"/api/v1/imports/{result['id']}/errors"
    assert _count(db, Contact, tenant.workspace_id) == 3


def test_rows_naming_known_people_fill_their_empty_fields_and_duplicates_are_one_contact(
    tenant, db, tmp_path: Path
) -> None:
    c = tenant.client
    existing = c.post(
        "/api/v1/contacts",
        json={"name": "老张", "region": "天津", "identities": [{"type": "phone", "value": "13800138000"}]},
    ).json()
    headers = ["姓名", "手机", "邮箱", "地区", "职业", "备注", "标签"]
    rows = [
        ["张三", "13800138000", "zhang@example.com", "北京", "运营", "老客户回访", "复购"],
        ["赵六", "13600136000", None, "深圳", None, "第一次", None],
        ["赵六六", None, "ZHAO@example.com", None, "设计师", None, "新客"],
        ["赵六", "13600136000", "zhao@example.com", "广州", None, "第一次", "新客"],
    ]
    path = write_xlsx(tmp_path / "dupes.xlsx", headers, rows)
    summary = upload(c, path).json()
    assert (summary["created"], summary["updated"], summary["rows"]) == (1, 1, 4), summary
    zhang = c.get(f"/api/v1/contacts/{existing['id']}").json()
    # Fill, never overwrite: the name and region it had stay; the occupation was empty.
    assert zhang["name"] == "老张" and zhang["region"] == "天津" and zhang["occupation"] == "运营"
    assert {i["value"] for i in zhang["identities"]} == {"+8613800138000", "zhang@example.com"}
    assert [t["name"] for t in zhang["tags"]] == ["复购"]
    zhao = _lookup(c, "13600136000")
    assert zhao["name"] == "赵六" and zhao["region"] == "深圳" and zhao["occupation"] == "设计师"
    assert {i["value"] for i in zhao["identities"]} == {"+8613600136000", "zhao@example.com"}
    assert [n["body"] for n in c.get(f"/api/v1/contacts/{zhao['id']}/notes").json()] == ["第一次"]

    again = upload(c, path).json()
    assert (again["created"], again["updated"]) == (0, 2)
    assert _count(db, Contact, tenant.workspace_id) == 2
    assert _count(db, Note, tenant.workspace_id) == 2  # the same notes are not added twice
    assert _count(db, TagChange, tenant.workspace_id) == 2  # nor the same tags


def test_a_row_joining_two_known_contacts_is_refused(tenant, tmp_path: Path) -> None:
    c = tenant.client
    one = c.post("/api/v1/contacts", json={"identities": [{"type": "phone", "value": "13800138000"}]}).json()
    two = c.post("/api/v1/contacts", json={"identities": [{"type": "email", "value": "a@b.cn"}]}).json()
    path = write_csv(tmp_path / "join.csv", ["手机", "email"], [["13800138000", "a@b.cn"]])
    response = upload(c, path)
    assert response.status_code == 422
    assert f"2 different contacts ({one['id']}, {two['id']})" in response.json()["error"]["details"][0]["reason"]


def test_attributes_owners_and_tag_rules(tenant, tmp_path: Path) -> None:
    c = tenant.client
    c.post("/api/v1/attributes", json={"key": "exam_year", "label": "报考年份", "type": "number"})
    c.post("/api/v1/attributes", json={"key": "level", "label": "级别", "type": "choice", "choices": ["三级", "四级"]})
    c.post("/api/v1/attributes", json={"key": "paid_on", "label": "付款日期", "type": "date"})
    staff_id, _ = tenant.as_staff("gu@brand.cn", name="顾问小王")
    other_id, _ = tenant.as_staff("li@brand.cn", name="小李")
    group = c.post("/api/v1/tag-groups", json={"name": "意向", "exclusive": True}).json()
    for name in ("A级", "B级"):
        c.post("/api/v1/tags", json={"group_id": group["id"], "name": name})
    headers = ["姓名", "手机", "报考年份", "级别", "付款日期", "负责人", "标签"]
    rows = [
        ["甲", "13800138000", "2026", "三级", "2026/11/20", "GU@brand.cn", "意向:A级"],
        ["乙", "13800138001", 2027, "四级", None, "小李", "B级"],
        ["丙", "13800138002", "明年", "五级", "11月20日", "nobody@brand.cn", "A级, B级"],
    ]
    path = write_xlsx(tmp_path / "attrs.xlsx", headers, rows)
    refused = upload(c, path).json()["error"]
    reason = refused["details"][0]["reason"]
    assert refused["details"][0]["row"] == 4
    for part in (
        "报考年份: '明年' is not a number",
        "级别: '五级' is not one of the choices: 三级, 四级",
        "付款日期: '11月20日' has no year",
        "no staff member with the email or name 'nobody@brand.cn'",
        "both in exclusive group '意向'",
    ):
        assert part in reason, reason
    summary = upload(c, path, skip_bad_rows=True).json()
    assert summary["created"] == 2 and summary["tags_created"] == 0
    jia = _lookup(c, "13800138000")
    assert jia["attributes"] == {"exam_year": 2026, "level": "三级", "paid_on": "2026-11-20"}
    assert jia["owner_id"] == staff_id and [t["name"] for t in jia["tags"]] == ["A级"]
    yi = _lookup(c, "13800138001")
    assert yi["owner_id"] == other_id and yi["attributes"] == {"exam_year": 2027, "level": "四级"}


def test_unknown_tags_need_tags_write_or_are_refused_on_request(make_tenant, tmp_path: Path) -> None:
    narrow = make_tenant("窄", scopes=frozenset({Scope.contacts_write, Scope.contacts_read}))
    path = write_csv(tmp_path / "t.csv", ["手机", "标签"], [["13800138000", "新标签"]])
    denied = upload(narrow.client, path)
    assert denied.status_code == 403 and "tags:write" in denied.json()["error"]["message"]
    strict = upload(narrow.client, path, create_tags=False)
    assert strict.status_code == 422
    assert "tag 导入/Imported:新标签 does not exist" in strict.json()["error"]["details"][0]["reason"]


def test_a_consultant_imports_for_themselves_only(tenant, tmp_path: Path) -> None:
    staff_id, consultant = tenant.as_staff("gu@brand.cn", name="顾问")
    other_id, _ = tenant.as_staff("li@brand.cn", name="小李")
    tenant.client.post(
        "/api/v1/contacts",
        json={"owner_id": other_id, "identities": [{"type": "phone", "value": "13900139000"}]},
    )
    path = write_csv(tmp_path / "mine.csv", ["姓名", "手机"], [["甲", "13800138000"], ["乙", "13900139000"]])
    refused = upload(consultant, path)
    assert refused.status_code == 422
    assert "customer of another staff member" in refused.json()["error"]["details"][0]["reason"]
    done = upload(consultant, path, skip_bad_rows=True).json()
    assert done["created"] == 1 and done["skipped"] == 1
    assert _lookup(consultant, "13800138000")["owner_id"] == staff_id
    assert [i["id"] for i in consultant.get("/api/v1/imports").json()] == [
        done["id"],
        refused.json()["error"]["import"]["id"],
    ]
    assert tenant.client.get(f"/api/v1/imports/{done['id']}").status_code == 200
    other_import = upload(tenant.client, write_csv(tmp_path / "x.csv", ["手机"], [["13700137000"]])).json()
    assert consultant.get(f"/api/v1/imports/{other_import['id']}").status_code == 404
    owned = write_csv(tmp_path / "o.csv", ["手机", "负责人"], [["13700137001", "小李"]])
    assert "for themselves" in upload(consultant, owned).text
    assert Role.consultant.value == "consultant"
