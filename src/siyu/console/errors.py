"""Errors on console pages become pages (or a redirect to sign in), never JSON."""

from __future__ import annotations

import urllib.parse

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from siyu.console.render import gettext_for, is_htmx, render
from siyu.errors import NotAuthenticated, SiyuError


def is_console(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/console") and not path.startswith("/console/static")


def sign_in_redirect(request: Request) -> Response:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = "/console/sign-in"
    if request.method == "GET" and here not in ("/console", "/console/"):
        target += "?" + urllib.parse.urlencode({"next": here})
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def error_page(request: Request, status_code: int, message: str) -> Response:
    _ = gettext_for(request)
    titles = {
        403: _("Not allowed"),
        404: _("Not found"),
        409: _("Conflict"),
        422: _("Check what you entered"),
    }
    title = titles.get(status_code, _("Something went wrong"))
    user = getattr(request.state, "console_user", None)
    return render(request, "error.html", {"title": title, "message": message}, user=user, status_code=status_code)


def console_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, NotAuthenticated):
        return sign_in_redirect(request)
    if isinstance(exc, SiyuError):
        return error_page(request, exc.status_code, exc.message)
    _ = gettext_for(request)
    return error_page(request, 500, _("An unexpected error occurred; it has been logged."))
