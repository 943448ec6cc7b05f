"""Helpers of the console tests (imported by conftest and the tests)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


@dataclass
class ConsoleStaff:
    staff_id: int
    client: TestClient

    def csrf(self, path: str = "/console/contacts") -> str:
        page = self.client.get(path)
        assert page.status_code == 200, page.text
        return csrf_of(page.text)

    def post(self, path: str, data: dict[str, object], *, page: str = "/console/contacts", **kw: object):  # type: ignore[no-untyped-def]
        return self.client.post(path, data={**data, "csrf_token": self.csrf(page)}, **kw)  # type: ignore[arg-type]


def sign_in_client(app, email: str, workspace_id: int | None = None) -> TestClient:  # type: ignore[no-untyped-def]
    client = TestClient(app, follow_redirects=False)
    page = client.get("/console/sign-in")
    assert page.status_code == 200
    data = {"email": email, "password": PASSWORD, "csrf_token": csrf_of(page.text), "next": "/console/contacts"}
    if workspace_id is not None:
        data["workspace_id"] = str(workspace_id)
    signed = client.post("/console/sign-in", data=data)
    assert signed.status_code == 303, signed.text
    return client


# A customer sheet as operators fill it in: Chinese headers, one row with a phone number that is not one.
SHEET_HEADERS = ["姓名", "手机号", "地区", "标签"]
SHEET_ROWS: list[list[Any]] = [
    ["导入甲", "13700137001", "杭州", "考研, 新客户"],
    ["导入乙", "137 0013 7002", "苏州", "考研"],
    ["导入丙", "12345", "南京", "新客户"],  # row 4: not a phone number
    ["导入丁", "+86 137-0013-7004", "杭州", None],
]
BAD_ROW = 4


def write_sheet(path: Path, headers: list[str] = SHEET_HEADERS, rows: list[list[Any]] = SHEET_ROWS) -> Path:
    from openpyxl import Workbook  # type: ignore[import-untyped]

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path
