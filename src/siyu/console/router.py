"""The /console tree: sign-in, sign-out, the language switch, and each domain's pages.

Every route of the console checks the CSRF token on unsafe methods (router dependency). Pages that
need a signed-in staff member take `CurrentUser`; without a valid session they redirect to sign-in.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

import siyu.broadcasts.console as broadcasts_console
import siyu.channels.console as channels_console
import siyu.contacts.console as contacts_console
import siyu.content.console as content_console
import siyu.delivery.console as delivery_console
import siyu.groups.console as groups_console
import siyu.imports.console as imports_console
import siyu.journeys.console as journeys_console
import siyu.scripts.console as scripts_console
import siyu.segments.console as segments_console
import siyu.stafftasks.console as staff_tasks_console
import siyu.tags.console as tags_console
from siyu.auth import service as auth_service
from siyu.auth.dependencies import SESSION_COOKIE, get_database
from siyu.console.csrf import verify_csrf
from siyu.console.dashboard import dashboard_page
from siyu.console.i18n import LANG_COOKIE, LANGUAGES
from siyu.console.render import gettext_for, redirect, render, safe_next
from siyu.console.security import CurrentUser
from siyu.errors import NotAuthenticated, ValidationFailed


async def form_data(request: Request) -> FormData:
    return await request.form()


Form = Annotated[FormData, Depends(form_data)]

console_router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(verify_csrf)])


@console_router.get("")
@console_router.get("/")
def home(request: Request, user: CurrentUser) -> Response:
    """The overview (dashboard) of a date range; contacts are one click away in the navigation."""
    return dashboard_page(request, user)


@console_router.get("/sign-in")
def sign_in_page(request: Request, next: str | None = None) -> Response:
    return render(request, "sign_in.html", {"next": safe_next(next), "error": None, "email": ""})


@console_router.post("/sign-in")
def sign_in(request: Request, form: Form) -> Response:
    settings = request.app.state.settings
    _ = gettext_for(request)
    email = str(form.get("email") or "").strip()
    password = str(form.get("password") or "")
    target = safe_next(str(form.get("next") or ""))
    raw_workspace = str(form.get("workspace_id") or "").strip()
    error: str | None = None
    if not email or not password:
        error = _("Enter your email and password.")
    workspace_id = int(raw_workspace) if raw_workspace.isdigit() else None
    if error is None:
        with get_database(request).transaction() as session:
            try:
                _staff_session, token = auth_service.sign_in(
                    session,
                    email=email,
                    password=password,
                    workspace_id=workspace_id,
                    ttl_hours=settings.session_ttl_hours,
                    max_failures=settings.sign_in_max_failures,
                    lock_minutes=settings.sign_in_lock_minutes,
                )
            except NotAuthenticated as exc:
                session.commit()  # a wrong password counts toward the lock-out
                if "locked" in exc.message:
                    error = _("Too many wrong passwords: this account is locked for a while. Try again later.")
                else:
                    error = _("Email or password is wrong.")
                token = None
            except ValidationFailed:
                error = _("This email signs in to several workspaces: enter the workspace id too.")
                token = None
        if token is not None:
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(
                SESSION_COOKIE, token, httponly=True, samesite="lax", max_age=settings.session_ttl_hours * 3600
            )
            return response
    page = render(
        request,
        "sign_in.html",
        {"next": target, "error": error, "email": email, "workspace_id": raw_workspace},
        status_code=401 if error else 200,
    )
    return page


@console_router.post("/sign-out")
def sign_out(request: Request, user: CurrentUser) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with get_database(request).transaction() as session:
            auth_service.sign_out(session, user.principal, token)
    response = RedirectResponse("/console/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@console_router.post("/language")
def switch_language(request: Request, form: Form) -> Response:
    lang = str(form.get("lang") or "")
    if lang not in LANGUAGES:
        raise ValidationFailed(f"lang: {lang!r} is not offered; choose one of {', '.join(LANGUAGES)}")
    response = redirect(request, safe_next(str(form.get("next") or "")))
    response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax")
    return response


console_router.include_router(contacts_console.router)
console_router.include_router(tags_console.router)
console_router.include_router(imports_console.router)
console_router.include_router(channels_console.router)
console_router.include_router(segments_console.router)
console_router.include_router(groups_console.router)
console_router.include_router(content_console.router)
console_router.include_router(scripts_console.router)
console_router.include_router(staff_tasks_console.router)
console_router.include_router(journeys_console.router)
console_router.include_router(broadcasts_console.router)
console_router.include_router(delivery_console.router)
