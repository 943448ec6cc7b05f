"""The public link page of a channel code, /c/{slug}: works without WeCom and without signing in.

GET counts a scan and shows a form asking for a phone number (or the platform id the code asks for);
POST attributes the person exactly as a WeCom add would (attribution.record_add) and shows the staff
member they were given and the welcome message.

Abuse protection, deliberately small: the slug is random (96 bits), so codes cannot be enumerated; the
form carries a token signed with the server secret over the slug and the time it was served (valid
for a day), so a POST must follow a GET of this page; each client address may send at most
POSTS_PER_MINUTE forms a minute (counted in this process); and a person sending the form again through
the same code is a repeat, which takes no second slot from the staff caps.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import deque
from pathlib import Path
from threading import Lock
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from siyu.channels import attribution, service
from siyu.channels.models import ChannelCode, CodeStatus, TouchSource
from siyu.console.csrf import secret_key
from siyu.contacts.identities import IdentityError, normalize
from siyu.db import Database
from siyu.errors import Conflict
from siyu.kit.time import utcnow

router = APIRouter(include_in_schema=False)

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=select_autoescape(["html"]),
    auto_reload=False,
)
TOKEN_TTL_SECONDS = 24 * 3600
POSTS_PER_MINUTE = 20

TEXT: dict[str, dict[str, str]] = {
    "zh-CN": {
        "title": "添加您的专属顾问",
        "intro": "留下联系方式，我们为您安排专属顾问。",
        "submit": "提交",
        "assigned": "已为您安排专属顾问：",
        "paused": "该二维码已暂停使用，请联系工作人员获取新的二维码。",
        "not_found": "二维码不存在或已失效。",
        "bad_token": "页面已过期，请刷新后重新提交。",
        "too_many": "提交太频繁，请稍后再试。",
        "busy": "顾问暂时都在忙，请稍后再试。",
        "empty": "请填写此项。",
        "bad_phone": "手机号格式不正确，请检查后重新输入。",
        "bad_value": "填写的内容不正确，请检查后重新输入。",
        "phone": "手机号",
        "douyin_open_id": "抖音号",
        "xiaohongshu_id": "小红书号",
        "wechat_id": "微信号",
    },
    "en": {
        "title": "Meet your consultant",
        "intro": "Leave your contact and we will assign you a personal consultant.",
        "submit": "Submit",
        "assigned": "Your consultant is:",
        "paused": "This code is paused. Please ask our staff for a new one.",
        "not_found": "This code does not exist or has expired.",
        "bad_token": "This page has expired; reload it and send the form again.",
        "too_many": "Too many attempts; please try again in a minute.",
        "busy": "All our consultants are busy right now; please try again later.",
        "empty": "Please fill this in.",
        "bad_phone": "That is not a valid mobile number; check it and try again.",
        "bad_value": "That value is not valid; check it and try again.",
        "phone": "Mobile number",
        "douyin_open_id": "Douyin ID",
        "xiaohongshu_id": "Xiaohongshu ID",
        "wechat_id": "WeChat ID",
    },
}


def language(request: Request) -> str:
    """zh-CN unless the browser asks for English and not Chinese."""
    header = request.headers.get("accept-language", "").lower()
    if "zh" in header or "en" not in header:
        return "zh-CN"
    return "en"


def form_token(request: Request, slug: str, issued: int | None = None) -> str:
    issued = int(time.time()) if issued is None else issued
    mac = hmac.new(secret_key(request.app.state.settings), f"channel-link:{slug}:{issued}".encode(), hashlib.sha256)
    return f"{issued}.{mac.hexdigest()[:32]}"


def token_ok(request: Request, slug: str, token: str) -> bool:
    issued_text, _, _ = token.partition(".")
    if not issued_text.isdigit():
        return False
    issued = int(issued_text)
    if not 0 <= time.time() - issued <= TOKEN_TTL_SECONDS:
        return False
    return hmac.compare_digest(token, form_token(request, slug, issued))


class RateLimiter:
    """At most `limit` hits per key in any `window` seconds (a sliding log, in this process)."""

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit, self.window = limit, window
        self._hits: dict[str, deque[float]] = {}
        self._lock = Lock()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if len(self._hits) > 10_000:  # forget idle clients
                self._hits = {k: v for k, v in self._hits.items() if v and now - v[-1] < self.window}
            hits = self._hits.setdefault(key, deque())
            while hits and now - hits[0] >= self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            return True


def _limiter(request: Request) -> RateLimiter:
    limiter = getattr(request.app.state, "channel_link_limiter", None)
    if not isinstance(limiter, RateLimiter):
        limiter = RateLimiter(POSTS_PER_MINUTE)
        request.app.state.channel_link_limiter = limiter
    return limiter


def _page(request: Request, code: ChannelCode | None, status_code: int = 200, **context: Any) -> HTMLResponse:
    lang = language(request)
    t = TEXT[lang]
    state = context.pop("state", "form")
    if code is None:
        state, status_code = "paused", 404
        t = {**t, "paused": t["not_found"]}
    elif code.status is CodeStatus.paused and state == "form":
        state = "paused"
    values: dict[str, Any] = {
        "lang": lang,
        "t": t,
        "title": t["title"],
        "state": state,
        "identity_type": code.identity_type if code else "phone",
        "field_label": t.get(code.identity_type if code else "phone", t["phone"]),
        "action": f"/c/{code.slug}" if code else "",
        "csrf_token": form_token(request, code.slug) if code else "",
        "value": "",
        "error": None,
        **context,
    }
    html = TEMPLATES.get_template("link.html").render(values)
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def _database(request: Request) -> Database:
    db: Database = request.app.state.database
    return db


@router.get("/c/{slug}", response_class=HTMLResponse)
def link_page(slug: str, request: Request) -> HTMLResponse:
    with _database(request).transaction() as session:
        code = service.code_by_slug(session, slug)
        if code is not None:
            service.count_scan(session, code, utcnow())
    return _page(request, code)


@router.post("/c/{slug}", response_class=HTMLResponse)
async def link_submit(slug: str, request: Request) -> HTMLResponse:
    form = await request.form()
    raw_value = form.get("value")
    value = raw_value.strip() if isinstance(raw_value, str) else ""
    token = form.get("csrf_token")
    t = TEXT[language(request)]
    database = _database(request)
    with database.transaction(write=False) as session:
        code = service.code_by_slug(session, slug)
    if code is None:
        return _page(request, None)
    if code.status is CodeStatus.paused:
        return _page(request, code, 409, state="paused")
    if not isinstance(token, str) or not token_ok(request, slug, token):
        return _page(request, code, 403, value=value, error=t["bad_token"])
    client = request.client.host if request.client else "unknown"
    if not _limiter(request).allow(client):
        return _page(request, code, 429, value=value, error=t["too_many"])
    if not value:
        return _page(request, code, 422, value=value, error=t["empty"])
    settings = request.app.state.settings
    try:
        normalize(code.identity_type, value, region=settings.default_phone_region)
    except IdentityError:
        message = t["bad_phone"] if code.identity_type == "phone" else t["bad_value"]
        return _page(request, code, 422, value=value, error=message)
    try:
        with database.transaction() as session:
            result = attribution.record_add(
                session,
                code.workspace_id,
                code.id,
                {code.identity_type: value},
                occurred_at=utcnow(),
                source=TouchSource.link,
                region=settings.default_phone_region,
            )
    except attribution.CodePaused:
        return _page(request, code, 409, state="paused")
    except Conflict:
        return _page(request, code, 409, value=value, error=t["busy"])
    return _page(
        request,
        code,
        state="done",
        staff_name=result.staff_name,
        welcome_text=result.welcome_text,
        welcome_link_title=result.welcome_link_title,
        welcome_link_url=result.welcome_link_url,
    )
