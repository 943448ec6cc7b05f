"""Real customer sheets for the import tests: .xlsx written by openpyxl, .csv in UTF-8, UTF-8 with BOM
and GBK, as operators' Excel and WPS save them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook

HEADERS = [
    "客户姓名",
    "手机号",
    "微信号",
    "地区",
    "职业",
    "性别",
    "生日",
    "来源",
    "首次咨询时间",
    "咨询问题",
    "备注",
    "标签",
]
ROWS: list[list[Any]] = [
    [
        "张三",
        "13800138000",
        "zhangsan88",
        "北京",
        "电商运营",
        "男",
        "1990-05-01",
        "抖音",
        "2026-11-01 10:30",
        "报考条件是什么",
        "想考三级",
        "意向:A级, 老客户",
    ],
    [
        "李四",
        "139 0013 9000",
        None,
        "上海",
        "学生",
        "女",
        "1999/12/31",
        "小红书",
        "2026/11/02 09:00",
        "多少钱",
        None,
        "新客户",
    ],
    ["王五", "+86 137-0013-7000", "wangwu", "广州", "教师", "未知", "5月1日", "知乎", None, None, None, None],
]


def write_xlsx(path: Path, headers: list[str], rows: list[list[Any]], title_row: str | None = None) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    if title_row:
        sheet.append([title_row])
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def write_csv(path: Path, headers: list[str], rows: list[list[Any]], encoding: str = "utf-8") -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def read_csv(content: bytes) -> list[list[str]]:
    assert content.startswith(b"\xef\xbb\xbf"), "Excel needs the BOM to read UTF-8"
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def read_xlsx(content: bytes) -> list[list[Any]]:
    workbook = load_workbook(io.BytesIO(content), read_only=True)
    sheet = workbook.active
    assert sheet is not None
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    workbook.close()
    return rows


def upload(client: Any, path: Path, url: str = "/api/v1/imports/contacts", **form: Any) -> Any:
    data = {k: (json.dumps(v, ensure_ascii=False) if k == "mapping" else str(v).lower()) for k, v in form.items()}
    with path.open("rb") as handle:
        return client.post(url, files={"file": (path.name, handle)}, data=data)
