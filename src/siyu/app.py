"""create_app(): the ASGI application. `siyu serve` runs it with uvicorn."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from siyu import __version__
from siyu.api import api_router, public_pages
from siyu.config import Settings, get_settings
from siyu.console.errors import console_error, is_console
from siyu.console.render import STATIC
from siyu.console.router import console_router
from siyu.db import Database, create_db_engine
from siyu.errors import Conflict, SiyuError
from siyu.jobs.worker import load_job_modules
from siyu.kit.heap import settle_after_startup
from siyu.wecom.service import use_settings as use_wecom_settings

log = logging.getLogger("siyu")

HTTP_CODES = {401: "not_authenticated", 403: "permission_denied", 404: "not_found", 405: "method_not_allowed"}


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header", "cookie")] or list(loc)
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SiyuError)
    async def _siyu(request: Request, exc: SiyuError) -> Response:
        if is_console(request):
            return console_error(request, exc)
        return JSONResponse(exc.to_body(), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        details = [{"field": _field(e["loc"]), "reason": e["msg"]} for e in exc.errors()]
        message = "; ".join(f"{d['field']}: {d['reason']}" for d in details[:5])
        if is_console(request):
            return console_error(request, SiyuError(message))
        body = {"error": {"code": "validation_failed", "message": message, "details": details}}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        if is_console(request):
            error = SiyuError(str(exc.detail))
            error.status_code = exc.status_code
            return console_error(request, error)
        body = {"error": {"code": code, "message": str(exc.detail)}}
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> Response:
        log.warning("integrity error: %s", exc.orig)
        message = "a concurrent change conflicted with this request; nothing was written, send it again"
        if is_console(request):
            return console_error(request, Conflict(message))
        return JSONResponse({"error": {"code": "conflict", "message": message}}, status_code=409)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        if is_console(request):
            return console_error(request, exc)
        body = {"error": {"code": "internal_error", "message": "an unexpected error occurred; it has been logged"}}
        return JSONResponse(body, status_code=500)


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    owns_database = database is None
    database = database or Database(create_db_engine(settings.database_url, settings), settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if owns_database:  # a server process (uvicorn's factory call), not a test's app
            database.start_checkpointer()
            settle_after_startup()
        yield
        if owns_database:
            database.dispose()

    app = FastAPI(
        title="siyu",
        version=__version__,
        summary="The open private-domain operations platform (私域运营)",
        lifespan=lifespan,
    )
    # Handlers must be registered here too: the API enqueues jobs by name in its own transactions.
    load_job_modules(settings)
    use_wecom_settings(settings)  # what the WeCom jobs run in this process use (base URL, secret key)
    app.state.database = database
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(api_router)
    app.include_router(public_pages)
    app.include_router(console_router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")

    @app.get("/health", tags=["health"], summary="Liveness and database check (public)")
    def health() -> dict[str, str]:
        with database.transaction(write=False) as session:
            session.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__}

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console")

    return app
