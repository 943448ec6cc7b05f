"""CSRF protection for console forms, and the secret it is derived from.

The token is HMAC-SHA256(secret, session token): a page can only know it if it was served to the
holder of the session cookie, and it changes with every sign-in. Before signing in (the sign-in form)
it is derived from a random `siyu_csrf` cookie instead. Every POST/PUT/PATCH/DELETE under /console must
carry it as the form field `csrf_token` or the `X-CSRF-Token` header (HTMX sends the header, set once
on <body hx-headers>); otherwise the answer is 403.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from functools import lru_cache
from pathlib import Path

from fastapi import Request
from sqlalchemy.engine import make_url

from siyu.auth.dependencies import SESSION_COOKIE
from siyu.config import DEFAULT_VAR_DIR, Settings
from siyu.errors import PermissionDenied

ANON_COOKIE = "siyu_csrf"
FIELD = "csrf_token"
HEADER = "x-csrf-token"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class CsrfRefused(PermissionDenied):
    code = "csrf_failed"


def var_dir(settings: Settings) -> Path:
    """Where generated state lives: next to the SQLite file, else ./var (the default database's dir)."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).parent
    return DEFAULT_VAR_DIR


@lru_cache(maxsize=8)
def _stored_secret(directory: Path) -> bytes:
    path = directory / "secret_key"
    directory.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = path.read_text(encoding="ascii").strip()
        if not value:
            raise RuntimeError(f"{path} is empty: delete it (a new one is generated) or set SIYU_SECRET_KEY") from None
        return value.encode()
    value = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(value + "\n")
    return value.encode()


def secret_key(settings: Settings) -> bytes:
    """SIYU_SECRET_KEY, or one generated once and kept in <var dir>/secret_key (mode 600)."""
    if settings.secret_key:
        return settings.secret_key.encode()
    return _stored_secret(var_dir(settings).resolve())


def _seed(request: Request) -> str | None:
    seed = request.cookies.get(SESSION_COOKIE) or request.cookies.get(ANON_COOKIE)
    return seed or getattr(request.state, "csrf_new_seed", None)


def token_for(settings: Settings, seed: str) -> str:
    return hmac.new(secret_key(settings), b"csrf:" + seed.encode(), hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """The token for the page being rendered; creates the pre-sign-in cookie's value if needed."""
    seed = _seed(request)
    if seed is None:
        seed = secrets.token_urlsafe(24)
        request.state.csrf_new_seed = seed  # render() sets it as the ANON_COOKIE
    return token_for(request.app.state.settings, seed)


async def verify_csrf(request: Request) -> None:
    """Route dependency of the whole console: unsafe methods need the right token."""
    if request.method not in UNSAFE_METHODS:
        return
    sent = request.headers.get(HEADER)
    if not sent:
        form = await request.form()
        value = form.get(FIELD)
        sent = value if isinstance(value, str) else None
    seed = request.cookies.get(SESSION_COOKIE) or request.cookies.get(ANON_COOKIE)
    if not sent or not seed:
        raise CsrfRefused(
            "this form has no security token (CSRF): reload the page and send it again; "
            "if it keeps happening, allow cookies for this site"
        )
    if not hmac.compare_digest(sent, token_for(request.app.state.settings, seed)):
        raise CsrfRefused(
            "this form's security token (CSRF) is wrong or from an earlier sign-in: reload the page and send it again"
        )
