"""The console's import page through the ASGI app: upload, preview, refused and skipping imports, the
kept upload, CSRF, and who sees which imports."""

from __future__ import annotations

import io
import os
import re
import time
import uuid
from pathlib import Path

import pytest
from console_helpers import BAD_ROW, SHEET_HEADERS, SHEET_ROWS, ConsoleStaff, csrf_of, write_sheet

from siyu.console.csrf import var_dir
from siyu.errors import NotFound, PayloadTooLarge
from siyu.imports.uploads import UploadStore
from siyu.staff.models import Role

UPLOAD_TOKEN = re.compile(r'name="upload" value="([A-Za-z0-9_-]{32})"')


def _upload(staff: ConsoleStaff, path: Path, *, csrf: str | None = None):  # type: ignore[no-untyped-def]
    token = staff.csrf("/console/imports") if csrf is None else csrf
    data = {"csrf_token": token} if token else {}
    with path.open("rb") as handle:
        return staff.client.post("/console/imports/preview", data=data, files={"file": (path.name, handle)})


def _token(html: str) -> str:
    match = UPLOAD_TOKEN.search(html)
    assert match, "the preview has no upload token"
    return match.group(1)


def _mapping_fields(html: str) -> dict[str, str]:
    """The selected option of every mapping select (map.<index>)."""
    fields = {}
    for name, body in re.findall(r'<select name="(map\.\d+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', body)
        fields[name] = chosen.group(1) if chosen else ""
    return fields


def _contact_names(tenant) -> set[str]:  # type: ignore[no-untyped-def]
    return {c["name"] for c in tenant.client.get("/api/v1/contacts", params={"limit": 200}).json()["items"]}


def test_upload_preview_refuse_then_skip_bad_rows(tenant, console_staff, tmp_path, settings) -> None:
    staff = console_staff()
    page = staff.client.get("/console/imports")
    assert page.status_code == 200 and 'href="/console/imports"' in page.text
    assert 'enctype="multipart/form-data"' in page.text
    sheet = write_sheet(tmp_path / "客户统计表.xlsx")
    preview = _upload(staff, sheet)
    assert preview.status_code == 200, preview.text
    html = preview.text
    for header in SHEET_HEADERS:
        assert f"<th>{header}</th>" in html
    mapping = _mapping_fields(html)
    assert mapping == {"map.0": "name", "map.1": "identity:phone", "map.2": "region", "map.3": "tags"}
    assert f'data-row="{BAD_ROW}"' in html and "is not a valid phone number" in html
    assert "导入/Imported:新客户" in html  # the tag that would be created
    token = _token(html)
    kept = var_dir(settings).resolve() / "uploads" / f"{token}.sheet"
    assert kept.exists()

    form = {"csrf_token": csrf_of(html), "upload": token, "create_tags": "on", **mapping}
    refused = staff.client.post("/console/imports", data=form)
    assert refused.status_code == 422
    assert "nothing was imported" in refused.text or "未导入任何数据" in refused.text
    assert f'data-row="{BAD_ROW}">{BAD_ROW}</td>' in refused.text and "12345" in refused.text
    assert re.search(r'href="/api/v1/imports/\d+/errors\?format=xlsx"', refused.text)
    assert _contact_names(tenant) == set()
    assert kept.exists()  # kept for another try

    done = staff.client.post("/console/imports", data={**form, "skip_bad_rows": "on"})
    assert done.status_code == 303, done.text
    assert re.fullmatch(r"/console/imports/\d+", done.headers["location"])
    assert not kept.exists()
    detail = staff.client.get(done.headers["location"]).text
    assert 'data-count="created">3<' in detail and 'data-count="skipped">1<' in detail
    error_link = re.search(r'href="(/api/v1/imports/\d+/errors\?format=csv)"', detail)
    assert error_link
    errors = staff.client.get(error_link.group(1))  # the API takes the console's session cookie
    assert errors.status_code == 200 and "12345" in errors.content.decode("utf-8-sig")
    assert _contact_names(tenant) == {row[0] for row in SHEET_ROWS} - {"导入丙"}
    listed = staff.client.get("/console/contacts", params={"q": "13700137002"}).text
    assert "导入乙" in listed
    history = staff.client.get("/console/imports").text
    assert history.count("data-import=") == 2 and "客户统计表.xlsx" in history
    again = staff.client.post("/console/imports", data={**form, "skip_bad_rows": "on"})
    assert again.status_code == 404 and "upload it again" in again.text  # the file went with the import


def test_changing_the_mapping_and_unreadable_files(console_staff, tmp_path) -> None:
    staff = console_staff()
    html = _upload(staff, write_sheet(tmp_path / "a.xlsx")).text
    token, csrf = _token(html), csrf_of(html)
    ignored = staff.client.post(
        "/console/imports/preview",
        data={"csrf_token": csrf, "upload": token, "map.0": "name", "map.1": "", "map.2": "region", "map.3": "tags"},
    )
    assert ignored.status_code == 200
    assert _mapping_fields(ignored.text)["map.1"] == "" and "is not a valid phone number" not in ignored.text
    twice = staff.client.post(
        "/console/imports",
        data={"csrf_token": csrf, "upload": token, "map.0": "name", "map.1": "name", "map.2": "", "map.3": ""},
    )
    assert twice.status_code == 422 and "both mapped to name" in twice.text
    assert _mapping_fields(twice.text)["map.1"] == "name"  # the operator's choice is kept on the page
    junk = tmp_path / "junk.xlsx"
    junk.write_bytes(b"not a workbook")
    refused = _upload(staff, junk)
    assert refused.status_code == 422 and "not a workbook" in refused.text and 'name="file"' in refused.text
    nothing = staff.client.post("/console/imports/preview", data={"csrf_token": csrf})
    assert nothing.status_code == 422
    unknown = staff.client.post("/console/imports", data={"csrf_token": csrf, "upload": "../../etc/passwd"})
    assert unknown.status_code == 404


def test_the_upload_needs_the_csrf_token(tenant, console_staff, tmp_path, settings) -> None:
    staff = console_staff()
    sheet = write_sheet(tmp_path / f"csrf-{uuid.uuid4().hex}.xlsx")
    missing = _upload(staff, sheet, csrf="")
    assert missing.status_code == 403 and "CSRF" in missing.text
    wrong = _upload(staff, sheet, csrf="0" * 64)
    assert wrong.status_code == 403 and "CSRF" in wrong.text
    uploads = var_dir(settings).resolve() / "uploads"  # shared by the test workers on PostgreSQL
    kept = [p.read_text(encoding="utf-8") for p in uploads.glob("*.json")] if uploads.is_dir() else []
    assert not any(sheet.name in meta for meta in kept)  # nothing was kept
    token = _token(_upload(staff, sheet).text)
    forged = staff.client.post("/console/imports", data={"upload": token, "skip_bad_rows": "on"})
    assert forged.status_code == 403
    assert _contact_names(tenant) == set()


def test_consultants_see_their_own_imports_only(tenant, console_staff, tmp_path) -> None:
    operator = console_staff()
    consultant = console_staff("c@brand.cn", role=Role.consultant, name="顾问小王")
    rows = [["顾问的客户", "13600136001", "杭州", None]]
    theirs = write_sheet(tmp_path / "顾问.xlsx", rows=rows)
    html = _upload(consultant, theirs).text
    done = consultant.client.post(
        "/console/imports",
        data={"csrf_token": csrf_of(html), "upload": _token(html), **_mapping_fields(html)},
    )
    assert done.status_code == 303, done.text
    own_id = int(done.headers["location"].rsplit("/", 1)[1])
    html = _upload(operator, write_sheet(tmp_path / "运营.xlsx")).text
    operator_token = _token(html)
    refused = operator.client.post(
        "/console/imports", data={"csrf_token": csrf_of(html), "upload": operator_token, **_mapping_fields(html)}
    )
    assert refused.status_code == 422
    other_id = int(re.search(r"/api/v1/imports/(\d+)/errors", refused.text).group(1))  # type: ignore[union-attr]

    mine = consultant.client.get("/console/imports").text
    assert "顾问.xlsx" in mine and "运营.xlsx" not in mine and mine.count("data-import=") == 1
    everyone = operator.client.get("/console/imports").text
    assert "顾问.xlsx" in everyone and "运营.xlsx" in everyone and "顾问小王" in everyone
    assert consultant.client.get(f"/console/imports/{own_id}").status_code == 200
    assert consultant.client.get(f"/console/imports/{other_id}").status_code == 404
    assert consultant.client.get(f"/api/v1/imports/{other_id}/errors").status_code == 404
    # an upload token opens the file for the staff member who uploaded it only
    stolen = consultant.client.post(
        "/console/imports", data={"csrf_token": consultant.csrf("/console/imports"), "upload": operator_token}
    )
    assert stolen.status_code == 404
    contact = tenant.client.get("/api/v1/contacts", params={"q": "13600136001"}).json()["items"][0]
    assert contact["owner_id"] == consultant.staff_id


def test_contacts_list_offers_both_export_formats(console_staff) -> None:
    staff = console_staff()
    page = staff.client.get("/console/contacts", params={"source_channel": "douyin"}).text
    assert "/api/v1/contacts/export?format=xlsx&amp;source_channel=douyin" in page
    assert "/api/v1/contacts/export?format=csv&amp;source_channel=douyin" in page
    exported = staff.client.get("/api/v1/contacts/export", params={"format": "csv", "source_channel": "douyin"})
    assert exported.status_code == 200 and exported.content.startswith(b"\xef\xbb\xbf")


def test_uploads_older_than_an_hour_are_deleted(tmp_path) -> None:
    store = UploadStore(tmp_path / "uploads")
    old = store.save(io.BytesIO(b"a,b\n1,2\n"), "old.csv", workspace_id=1, staff_id=2, max_bytes=100)
    assert store.open(old, workspace_id=1, staff_id=2).path.read_bytes() == b"a,b\n1,2\n"
    with pytest.raises(NotFound):
        store.open(old, workspace_id=1, staff_id=3)
    hour_ago = time.time() - 3601
    for path in (tmp_path / "uploads").iterdir():
        os.utime(path, (hour_ago, hour_ago))
    fresh = store.save(io.BytesIO(b"x,y\n"), "new.csv", workspace_id=1, staff_id=2, max_bytes=100)
    assert sorted(p.name for p in (tmp_path / "uploads").iterdir()) == [f"{fresh}.json", f"{fresh}.sheet"]
    with pytest.raises(NotFound, match="upload it again"):
        store.open(old, workspace_id=1, staff_id=2)
    with pytest.raises(PayloadTooLarge):
        store.save(io.BytesIO(b"x" * 101), "big.csv", workspace_id=1, staff_id=2, max_bytes=100)
    assert len(list((tmp_path / "uploads").iterdir())) == 2
    store.delete(fresh)
    assert list((tmp_path / "uploads").iterdir()) == []
