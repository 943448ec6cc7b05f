"""Rendering console pages: one Jinja2 environment per language, the page context, flash notices."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from siyu.auth.principal import Principal
from siyu.console import csrf
from siyu.console.i18n import LANG_COOKIE, LANGUAGE_NAMES, LANGUAGES, Formatter, negotiate, translations

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
FLASH_COOKIE = "siyu_flash"


@dataclass(frozen=True)
class ConsoleUser:
    """The signed-in staff member as the console shows them."""

    principal: Principal
    name: str
    email: str
    workspace_name: str
    timezone: str

    @property
    def can_manage_owners(self) -> bool:
        return self.principal.owned_contacts_only is None


def language(request: Request) -> str:
    cached = getattr(request.state, "language", None)
    if isinstance(cached, str):
        return cached
    lang = negotiate(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))
    request.state.language = lang
    return lang


def gettext_for(request: Request) -> Any:
    return translations(language(request)).gettext


@pass_context
def _fmt_datetime(context: Context, value: dt.datetime | None, form: str = "short") -> str:
    formatter: Formatter = context["fmt"]
    return formatter.datetime(value, form)


@pass_context
def _fmt_date(context: Context, value: dt.date | None, form: str = "medium") -> str:
    formatter: Formatter = context["fmt"]
    return formatter.date(value, form)


@pass_context
def _fmt_number(context: Context, value: float | None) -> str:
    formatter: Formatter = context["fmt"]
    return formatter.number(value)


@lru_cache(maxsize=len(LANGUAGES))
def environment(lang: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters["datetime"] = _fmt_datetime
    env.filters["date"] = _fmt_date
    env.filters["number"] = _fmt_number
    env.filters["urlencode_params"] = lambda params: urllib.parse.urlencode(params, doseq=True)
    return env


def flash(response: Response, message: str, kind: str = "ok") -> None:
    """A one-time notice shown on the next page (after a redirect)."""
    response.set_cookie(FLASH_COOKIE, urllib.parse.quote(f"{kind}:{message}"), httponly=True, samesite="lax")


def _take_flash(request: Request) -> tuple[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    kind, _, message = urllib.parse.unquote(raw).partition(":")
    return (kind if kind in ("ok", "error") else "ok", message)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    user: ConsoleUser | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    lang = language(request)
    token = csrf.csrf_token(request)
    notice = _take_flash(request)
    page = {
        "request": request,
        "lang": lang,
        "languages": LANGUAGE_NAMES,
        "csrf_token": token,
        "csrf_field": Markup('<input type="hidden" name="{}" value="{}">').format(csrf.FIELD, token),
        "user": user,
        "fmt": Formatter(lang, user.timezone if user else "Asia/Shanghai"),
        "notice": notice,
        "path": request.url.path,
        "here": str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
        **(context or {}),
    }
    html = environment(lang).get_template(template).render(page)
    response = HTMLResponse(html, status_code=status_code)
    new_seed = getattr(request.state, "csrf_new_seed", None)
    if new_seed:
        response.set_cookie(csrf.ANON_COOKIE, new_seed, httponly=True, samesite="lax")
    if notice and not is_htmx(request):
        response.delete_cookie(FLASH_COOKIE)
    return response


def safe_next(target: str | None, default: str = "/console") -> str:
    """Only console paths on this site: never an open redirect."""
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return default


def redirect(request: Request, url: str) -> Response:
    """303 after a form post; HTMX requests get HX-Redirect so the whole page follows."""
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)
