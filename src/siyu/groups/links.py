"""The public page of a group code, /g/{slug}: no sign-in, no WeCom needed to show it.

(Its template lives with the console's, in console/templates/groups/, but is rendered without the console.)

GET counts a scan and shows the current group (the first in the code's order that is not full): its
name, its QR (drawn from the group's join link) and the link itself. When every group is full and the
code has a template, a new group is opened (pending) and the page says it is being prepared; staff see
the task on the code's console page. A paused or unknown code says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import segno
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from siyu.channels.links import language
from siyu.db import Database
from siyu.groups import repository, service
from siyu.groups.models import GroupCodeStatus, GroupStatus
from siyu.kit.time import utcnow

router = APIRouter(include_in_schema=False)

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parents[1] / "console" / "templates"),
    autoescape=select_autoescape(["html"]),
    auto_reload=False,
)

TEXT: dict[str, dict[str, str]] = {
    "zh-CN": {
        "title": "扫码加入群聊",
        "join": "长按识别二维码，或点击下方链接加入：",
        "open": "加入群聊",
        "preparing": "新群正在准备中，请稍后再扫码，或联系工作人员。",
        "full": "群已满员，请联系工作人员获取新的群二维码。",
        "paused": "该群活码已暂停使用，请联系工作人员。",
        "not_found": "群活码不存在或已失效。",
        "members": "人已加入",
    },
    "en": {
        "title": "Join the group",
        "join": "Scan or long-press the QR code, or open the link below:",
        "open": "Join the group",
        "preparing": "A new group is being prepared. Please scan again later or ask our staff.",
        "full": "The groups are full. Please ask our staff for a new group code.",
        "paused": "This group code is paused. Please ask our staff.",
        "not_found": "This group code does not exist or has expired.",
        "members": "members",
    },
}


def _page(request: Request, status_code: int = 200, **context: Any) -> HTMLResponse:
    lang = language(request)
    t = TEXT[lang]
    values = {"lang": lang, "t": t, "title": t["title"], **context}
    html = TEMPLATES.get_template("groups/public_join.html").render(values)
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


@router.get("/g/{slug}", response_class=HTMLResponse)
def join_page(slug: str, request: Request) -> HTMLResponse:
    database: Database = request.app.state.database
    with database.transaction() as session:
        found = repository.code_by_slug(session, slug)
        if found is None:
            return _page(request, 404, state="not_found")
        service.count_scan(session, found, utcnow())
        if found.status is GroupCodeStatus.paused:
            return _page(request, 409, state="paused", code_name=found.name)
        code = service.get_code(session, found.workspace_id, found.id, for_update=True)
        group = service.serve(session, code)
        if group is None:
            return _page(request, state="full", code_name=code.name)
        if group.status is GroupStatus.pending or not group.join_url:
            return _page(request, state="preparing", code_name=code.name, group_name=group.name)
        qr = segno.make(group.join_url, error="m", micro=False).svg_data_uri(scale=6, border=2)
        return _page(
            request,
            state="join",
            code_name=code.name,
            group_name=group.name,
            group_id=group.id,
            join_url=group.join_url,
            qr=qr,
        )
