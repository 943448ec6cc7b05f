"""The `siyu` command: serve, worker, migrate, and workspace / staff / API key administration."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from siyu.config import get_settings
from siyu.errors import SiyuError

app = typer.Typer(help="siyu (私域): the open private-domain operations platform.", no_args_is_help=True)
workspace_app = typer.Typer(help="Create and list workspaces.", no_args_is_help=True)
staff_app = typer.Typer(help="Add and list staff.", no_args_is_help=True)
apikey_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(workspace_app, name="workspace")
app.add_typer(staff_app, name="staff")
app.add_typer(apikey_app, name="apikey")

console = Console()
err = Console(stderr=True)


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """One transaction for one command; a SiyuError is printed and exits 1 with nothing written."""
    from siyu.db import Database, create_db_engine

    settings = get_settings()
    database = Database(create_db_engine(settings.database_url, settings))
    try:
        with database.transaction() as session:
            yield session
    except SiyuError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        for detail in exc.details:
            err.print(f"  - {detail}")
        raise typer.Exit(1) from None
    finally:
        database.dispose()


@app.command()
def migrate() -> None:
    """Apply database migrations (creates the SQLite file under ./var/ if needed)."""
    from siyu.db import create_db_engine
    from siyu.migrations.runner import upgrade

    settings = get_settings()
    engine = create_db_engine(settings.database_url, settings)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    console.print(f"database is up to date: {engine.url.render_as_string(hide_password=True)}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to bind (default SIYU_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default SIYU_PORT)")] = None,
    workers: Annotated[int, typer.Option(help="HTTP worker processes (PostgreSQL only for more than 1)")] = 1,
    reload: Annotated[bool, typer.Option(help="reload on code changes (development)")] = False,
) -> None:
    """Serve the API (OpenAPI docs at /docs)."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "siyu.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        reload=reload,
    )


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, help="jobs run at once in this process")] = 1,
    once: Annotated[bool, typer.Option(help="run the jobs due now, then exit")] = False,
) -> None:
    """Run background jobs (and cron ticks) until stopped with Ctrl-C / SIGTERM."""
    import logging

    from siyu.db import Database, create_db_engine
    from siyu.jobs.worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    database = Database(create_db_engine(settings.database_url, settings))
    try:
        count = run_worker(database, concurrency=concurrency, once=once, settings=settings)
    finally:
        database.dispose()
    if once:
        console.print(f"ran {count} jobs")


@workspace_app.command("create")
def workspace_create(
    name: str,
    timezone: Annotated[str, typer.Option(help="IANA time zone for local times")] = "Asia/Shanghai",
) -> None:
    """Create a workspace (one brand's isolated data) and print its id."""
    from siyu.workspaces.service import create_workspace

    with unit_of_work() as session:
        workspace = create_workspace(session, name, timezone=timezone)
        console.print(f"workspace {workspace.id} created: {workspace.name}")


@workspace_app.command("list")
def workspace_list() -> None:
    """List workspaces."""
    from siyu.workspaces.service import list_workspaces

    with unit_of_work() as session:
        table = Table("id", "name", "timezone", "created")
        for w in list_workspaces(session):
            table.add_row(str(w.id), w.name, w.timezone, w.created_at.isoformat(timespec="seconds"))
        console.print(table)


@staff_app.command("add")
def staff_add(
    email: str,
    name: Annotated[str, typer.Option(help="display name")],
    workspace: Annotated[int, typer.Option(help="workspace id")],
    role: Annotated[str, typer.Option(help="admin, operator or consultant")] = "consultant",
    password: Annotated[
        str | None, typer.Option(help="sign-in password; asked for when omitted on a terminal, env SIYU_STAFF_PASSWORD")
    ] = None,
) -> None:
    """Add a staff member who can sign in."""
    import os

    from pydantic import ValidationError

    from siyu.staff.schemas import StaffCreate
    from siyu.staff.service import add_staff

    password = password or os.environ.get("SIYU_STAFF_PASSWORD")
    if password is None and sys.stdin.isatty():
        password = getpass.getpass("password (8+ characters): ")
    try:
        data = StaffCreate(email=email, name=name, role=role, password=password)  # type: ignore[arg-type]
    except ValidationError as exc:
        for e in exc.errors():
            err.print(f"[red]error:[/red] {'.'.join(str(p) for p in e['loc'])}: {e['msg']}")
        raise typer.Exit(1) from None
    with unit_of_work() as session:
        staff = add_staff(session, workspace, data)
        console.print(f"staff {staff.id} added: {staff.email} ({staff.role.value}) in workspace {workspace}")


@staff_app.command("list")
def staff_list(workspace: Annotated[int, typer.Option(help="workspace id")]) -> None:
    """List a workspace's staff."""
    from siyu.staff.service import list_staff

    with unit_of_work() as session:
        table = Table("id", "email", "name", "role", "active")
        for s in list_staff(session, workspace):
            table.add_row(str(s.id), s.email, s.name, s.role.value, "yes" if s.is_active else "no")
        console.print(table)


@apikey_app.command("create")
def apikey_create(
    workspace: Annotated[int, typer.Option(help="workspace id")],
    name: Annotated[str, typer.Option(help="what the key is for")] = "integration",
    scope: Annotated[
        list[str] | None, typer.Option(help="a scope; repeat for several (default: integrator scopes)")
    ] = None,
) -> None:
    """Create an API key. The key is printed once and stored only hashed."""
    from siyu.auth.scopes import parse_scopes
    from siyu.auth.service import create_api_key

    with unit_of_work() as session:
        key, plaintext = create_api_key(
            session, workspace_id=workspace, name=name, scopes=parse_scopes(scope) if scope else None
        )
        err.print(f"API key {key.id} for workspace {workspace} (shown once, store it now):")
        print(plaintext)


@apikey_app.command("list")
def apikey_list(workspace: Annotated[int, typer.Option(help="workspace id")]) -> None:
    """List a workspace's API keys (never the keys themselves)."""
    from sqlalchemy import select

    from siyu.auth.models import ApiKey

    with unit_of_work() as session:
        table = Table("id", "name", "prefix", "scopes", "revoked")
        for k in session.scalars(select(ApiKey).where(ApiKey.workspace_id == workspace).order_by(ApiKey.id)):
            table.add_row(str(k.id), k.name, k.prefix + "…", json.dumps(k.scopes), "yes" if k.revoked_at else "")
        console.print(table)


@apikey_app.command("revoke")
def apikey_revoke(key_id: int, workspace: Annotated[int, typer.Option(help="workspace id")]) -> None:
    """Revoke an API key at once."""
    from siyu.auth.service import revoke_api_key

    with unit_of_work() as session:
        revoke_api_key(session, workspace_id=workspace, key_id=key_id)
        console.print(f"API key {key_id} revoked")


if __name__ == "__main__":
    app()
