"""Tracked links, /r/{token}: what a person opens from a pushed piece of content.

GET /r/{token} checks the signature (service.make_token), counts a view when the request comes from a
person, and answers 302: to the item's URL (material, product, video, mini-program with a URL), or to
/r/{token}/view, the page siyu renders for articles, cases and scripts (and mini-programs given by appid
and path). /r/{token}/view never counts anything. A tampered or unknown token is a 404 page; a link to
an archived item is a 410 page.

Not counted (docs/en/content.md, "What counts as a view"):
- HEAD requests, and requests without a User-Agent;
- a User-Agent that is not a browser (does not contain "Mozilla/"), or matches BOT_PATTERN (crawlers,
  link-preview fetchers of WeChat/WeCom and other apps, HTTP libraries, headless browsers);
- prefetches and previews announced by headers: `Purpose: prefetch`, `Sec-Purpose: prefetch` /
  `prerender`, `X-Purpose: preview`, `X-Moz: prefetch`;
- more than VIEWS_PER_MINUTE opens a minute from one client address (in this process);
- the same viewer opening the same push again within the same minute (one view per push, viewer, minute).

Who viewed: a personal link counts for its contact, and leaves a signed first-party cookie
(`siyu_rv`, path /r) naming them. A group link counts for the group, anonymously, unless that cookie is
present for the same workspace: then it counts for that contact too (the event carries the group id).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from siyu.channels.links import RateLimiter
from siyu.console.csrf import secret_key
from siyu.content import service
from siyu.content.markup import render
from siyu.content.models import ContentItem, ContentKind, ContentPush, ContentStatus
from siyu.db import Database

router = APIRouter(include_in_schema=False)

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parents[1] / "console" / "templates" / "content"),
    autoescape=select_autoescape(["html"]),
    auto_reload=False,
)
VIEWER_COOKIE = "siyu_rv"
VIEWER_COOKIE_DAYS = 180
VIEWS_PER_MINUTE = 60

BOT_PATTERN = re.compile(
    r"bot\b|bot/|spider|crawl|slurp|preview|fetcher|scraper|facebookexternalhit|embedly|quora link|"
    r"whatsapp|telegram|skypeuripreview|bitlybot|vkshare|w3c_validator|"
    # WeChat / WeCom / QQ server-side fetchers and link-preview helpers
    r"wechatshare|wxwork.*preview|mpcrawler|qqbrowser.*spider|qq-url-preview|"
    # Chinese search engines and app crawlers
    r"baiduspider|yisouspider|sogou|360spider|bytespider|petalbot|"
    # HTTP libraries, command-line tools, headless browsers, monitors
    r"curl|wget|python-|httpx|aiohttp|go-http-client|java/|okhttp|libwww|node-fetch|axios|"
    r"headlesschrome|phantomjs|lighthouse|pingdom|uptime",
    re.IGNORECASE,
)
PREFETCH_HEADERS = {"purpose": "prefetch", "sec-purpose": "prefetch", "x-purpose": "preview", "x-moz": "prefetch"}

TEXT: dict[str, dict[str, str]] = {
    "zh-CN": {
        "not_found": "链接不存在或已失效。",
        "gone": "该内容已下架。",
        "answers": "参考回答",
        "open_mini_program": "请在微信中打开小程序",
    },
    "en": {
        "not_found": "This link does not exist or has expired.",
        "gone": "This content is no longer available.",
        "answers": "Suggested answers",
        "open_mini_program": "Open this mini-program in WeChat",
    },
}


def is_person(request: Request) -> bool:
    """Whether this request may count as a view (see the module docstring for the rule)."""
    if request.method != "GET":
        return False
    agent = request.headers.get("user-agent", "").strip()
    if not agent or "mozilla/" not in agent.lower() or BOT_PATTERN.search(agent):
        return False
    for header, value in PREFETCH_HEADERS.items():
        if value in request.headers.get(header, "").lower():
            return False
    return "prerender" not in request.headers.get("sec-purpose", "").lower()


def _language(request: Request) -> str:
    header = request.headers.get("accept-language", "").lower()
    return "zh-CN" if "zh" in header or "en" not in header else "en"


def _page(request: Request, status_code: int, **context: Any) -> HTMLResponse:
    lang = _language(request)
    values = {"lang": lang, "t": TEXT[lang], "item": None, "message": None, **context}
    html = TEMPLATES.get_template("public.html").render(values)
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store", "X-Robots-Tag": "noindex"})


def _limiter(request: Request) -> RateLimiter:
    limiter = getattr(request.app.state, "content_link_limiter", None)
    if not isinstance(limiter, RateLimiter):
        limiter = RateLimiter(VIEWS_PER_MINUTE)
        request.app.state.content_link_limiter = limiter
    return limiter


def _database(request: Request) -> Database:
    db: Database = request.app.state.database
    return db


def _resolve(request: Request, token: str) -> tuple[ContentPush, ContentItem, int | None] | Response:
    parsed = service.parse_token(secret_key(request.app.state.settings), token)
    if parsed is None:
        return _page(request, 404, message=TEXT[_language(request)]["not_found"])
    push_id, contact_id = parsed
    with _database(request).transaction(write=False) as session:
        push = session.get(ContentPush, push_id)
        item = session.get(ContentItem, push.content_id) if push is not None else None
        if push is None or item is None:
            return _page(request, 404, message=TEXT[_language(request)]["not_found"])
        session.expunge_all()
    if item.status is ContentStatus.archived:
        return _page(request, 410, message=TEXT[_language(request)]["gone"])
    return push, item, contact_id


def _target(item: ContentItem, token: str) -> str:
    url = item.data.get("url")
    if item.kind in service.RENDERED_KINDS or not isinstance(url, str):
        return f"/r/{token}/view"
    return url


@router.api_route("/r/{token}", methods=["GET", "HEAD"])
def open_link(token: str, request: Request) -> Response:
    resolved = _resolve(request, token)
    if isinstance(resolved, Response):
        return resolved
    push, item, contact_id = resolved
    secret = secret_key(request.app.state.settings)
    viewer = contact_id
    if viewer is None:
        viewer = service.parse_viewer_cookie(secret, request.cookies.get(VIEWER_COOKIE), push.workspace_id)
    client = request.client.host if request.client else "unknown"
    if is_person(request) and _limiter(request).allow(client):
        with _database(request).transaction() as session:
            service.record_view(session, push, viewer)
    response = RedirectResponse(_target(item, token), status_code=302, headers={"Cache-Control": "no-store"})
    if contact_id is not None:
        response.set_cookie(
            VIEWER_COOKIE,
            service.viewer_cookie(secret, push.workspace_id, contact_id),
            max_age=VIEWER_COOKIE_DAYS * 86400,
            path="/r",
            httponly=True,
            samesite="lax",
        )
    return response


@router.api_route("/r/{token}/view", methods=["GET", "HEAD"], response_class=HTMLResponse)
def view_page(token: str, request: Request) -> Response:
    resolved = _resolve(request, token)
    if isinstance(resolved, Response):
        return resolved
    _push, item, _contact = resolved
    return _page(
        request,
        200,
        item=item,
        body_html=render(item.body),
        mini_program=item.kind is ContentKind.mini_program,
    )
