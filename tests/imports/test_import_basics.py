"""Reading sheets: xlsx and csv in every encoding Excel uses, the header guess and the preview."""

from __future__ import annotations

from pathlib import Path

import pytest
from sheet_files import HEADERS, ROWS, upload, write_csv, write_xlsx

from siyu.imports.mapping import guess_mapping


def test_the_guess_knows_common_chinese_and_english_headers() -> None:
    mapping = guess_mapping([*HEADERS, "Name", "Phone", "unionid", "城市", "Email", "负责人", "id", "创建时间"], {})
    assert mapping["客户姓名"] == "name" and mapping["Name"] is None  # one name column: the first
    assert mapping["手机号"] == "identity:phone" and mapping["Phone"] == "identity:phone"
    assert mapping["微信号"] == "identity:wechat_id" and mapping["unionid"] == "identity:wechat_unionid"
    assert mapping["地区"] == "region" and mapping["城市"] is None
    assert mapping["性别"] == "gender" and mapping["生日"] == "birthday" and mapping["职业"] == "occupation"
    assert mapping["来源"] == "source_channel" and mapping["首次咨询时间"] == "first_consult_at"
    assert mapping["咨询问题"] == "consult_question" and mapping["备注"] == "note" and mapping["标签"] == "tags"
    assert mapping["Email"] == "identity:email" and mapping["负责人"] == "owner"
    assert mapping["id"] is None and mapping["创建时间"] is None
    assert guess_mapping(["手机号（必填）", " 姓名 *"], {}) == {"手机号（必填）": "identity:phone", " 姓名 *": "name"}


@pytest.mark.parametrize("kind", ["xlsx", "utf-8", "utf-8-sig", "gbk"])
def test_preview_reads_every_format_and_shows_rows_as_mapped(tenant, tmp_path: Path, kind: str) -> None:
    if kind == "xlsx":
        path = write_xlsx(tmp_path / "客户统计表.xlsx", HEADERS, ROWS)
    else:
        path = write_csv(tmp_path / "客户统计表.csv", HEADERS, ROWS, encoding=kind)
    response = upload(tenant.client, path, "/api/v1/imports/contacts/preview")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["file_format"] == ("xlsx" if kind == "xlsx" else "csv")
    expected = {"xlsx": None, "utf-8": "utf-8", "utf-8-sig": "utf-8-sig", "gbk": "gb18030"}[kind]
    assert body["encoding"] == expected
    assert body["headers"] == HEADERS and body["mapping"]["手机号"] == "identity:phone"
    first, second, third = body["rows"]
    assert first["row"] == 2 and first["problems"] == [], first
    assert first["values"]["name"] == "张三" and first["values"]["gender"] == "male"
    assert {"type": "phone", "value": "+8613800138000"} in first["values"]["identities"]
    assert first["values"]["first_consult_at"].startswith("2026-11-01T02:30")  # 10:30 Shanghai
    assert first["values"]["birthday"] == "1990-05-01" and first["values"]["notes"] == ["想考三级"]
    assert first["values"]["tags"] == ["意向:A级", "导入/Imported:老客户"]
    assert second["values"]["identities"] == [{"type": "phone", "value": "+8613900139000"}]
    assert second["values"]["birthday"] == "1999-12-31"
    assert third["values"]["birthday"] == "--05-01" and third["values"]["gender"] == "unknown"
    assert third["row"] == 4


def test_preview_reports_problems_per_row_and_a_title_row_is_skipped(tenant, tmp_path: Path) -> None:
    rows = [["赵六", "12345", "男", "明天"], ["钱七", "13800138001", "不详", "2026-13-01"]]
    path = write_xlsx(
        tmp_path / "bad.xlsx", ["姓名", "手机", "性别", "首次咨询时间"], rows, title_row="2026年客户统计表"
    )
    body = upload(tenant.client, path, "/api/v1/imports/contacts/preview").json()
    assert body["header_row"] == 2
    first, second = body["rows"]
    assert first["row"] == 3 and len(first["problems"]) == 2
    assert first["problems"][0].startswith("手机: '12345' is not a valid phone number")
    assert "明天" in first["problems"][1]
    assert second["row"] == 4 and any("不详" in p and "男, 女" in p for p in second["problems"])
    assert any("2026-13-01" in p for p in second["problems"])


def test_a_mapping_sent_is_laid_over_the_guess_and_checked(tenant, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", ["客户", "联系", "意向等级"], [["孙八", "13800138002", "A级"]])
    tenant.client.post("/api/v1/tag-groups", json={"name": "意向等级", "exclusive": True})
    guessed = upload(tenant.client, path, "/api/v1/imports/contacts/preview").json()
    assert guessed["guessed_mapping"] == {"客户": None, "联系": None, "意向等级": "tags:意向等级"}
    body = upload(
        tenant.client, path, "/api/v1/imports/contacts/preview", mapping={"客户": "name", "联系": "identity:phone"}
    ).json()
    assert body["rows"][0]["values"]["name"] == "孙八" and body["rows"][0]["values"]["tags"] == ["意向等级:A级"]
    bad = upload(tenant.client, path, "/api/v1/imports/contacts/preview", mapping={"客户": "nickname", "无": "name"})
    assert bad.status_code == 422
    fields = {d["field"] for d in bad.json()["error"]["details"]}
    assert fields == {"mapping.客户", "mapping.无"}
    twice = upload(tenant.client, path, "/api/v1/imports/contacts/preview", mapping={"客户": "name", "联系": "name"})
    assert twice.status_code == 422 and "both mapped to name" in twice.text
    attr = upload(tenant.client, path, "/api/v1/imports/contacts/preview", mapping={"客户": "attr:exam_year"})
    assert attr.status_code == 422 and "not declared" in attr.text


def test_unreadable_files_are_refused_with_the_reason(tenant, tmp_path: Path) -> None:
    old = tmp_path / "old.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0" + b"\0" * 100)
    response = upload(tenant.client, old, "/api/v1/imports/contacts/preview")
    assert response.status_code == 422 and "save as .xlsx" in response.json()["error"]["message"]
    fake = tmp_path / "fake.xlsx"
    fake.write_text("姓名\n张三\n", encoding="utf-8")
    assert "not a workbook" in upload(tenant.client, fake, "/api/v1/imports/contacts/preview").text
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert "empty" in upload(tenant.client, empty, "/api/v1/imports/contacts/preview").text
    twice = write_csv(tmp_path / "dup.csv", ["姓名", "姓名"], [["a", "b"]])
    assert "appears twice" in upload(tenant.client, twice, "/api/v1/imports/contacts/preview").text
