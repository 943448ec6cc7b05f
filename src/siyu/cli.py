"""The `siyu` command: serve, worker, migrate, and workspace / staff / API key administration."""

from __future__ import annotations

import getpass
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import TaskID
from rich.table import Table
from sqlalchemy.orm import Session

from siyu.config import get_settings
from siyu.errors import SiyuError

app = typer.Typer(help="siyu (私域): the open private-domain operations platform.", no_args_is_help=True)
workspace_app = typer.Typer(help="Create and list workspaces.", no_args_is_help=True)
staff_app = typer.Typer(help="Add and list staff.", no_args_is_help=True)
apikey_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
import_app = typer.Typer(help="Bring customer sheets (.xlsx, .csv) in.", no_args_is_help=True)
app.add_typer(workspace_app, name="workspace")
app.add_typer(staff_app, name="staff")
app.add_typer(apikey_app, name="apikey")
usermodel_app = typer.Typer(
    help="The user model: computed properties, scores, smart tags, segments.", no_args_is_help=True
)
app.add_typer(import_app, name="import")
app.add_typer(usermodel_app, name="usermodel")

console = Console()
err = Console(stderr=True)


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """One transaction for one command; a SiyuError is printed and exits 1 with nothing written."""
    from siyu.db import Database, create_db_engine

    settings = get_settings()
    database = Database(create_db_engine(settings.database_url, settings), settings)
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


def _die_with_parent() -> None:
    """In the worker child of `serve --with-worker`: SIGTERM when serve exits, however it exits (uvicorn
    ends its process on a signal without running our finally blocks). Linux; elsewhere a no-op."""
    import contextlib
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to bind (default SIYU_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default SIYU_PORT)")] = None,
    workers: Annotated[int, typer.Option(help="HTTP worker processes (PostgreSQL only for more than 1)")] = 1,
    reload: Annotated[bool, typer.Option(help="reload on code changes (development)")] = False,
    with_worker: Annotated[
        bool,
        typer.Option(
            "--with-worker",
            help="also run `siyu worker` as a child process (one machine: events stored, journeys run)",
        ),
    ] = False,
) -> None:
    """Serve the API (OpenAPI docs at /docs)."""
    import subprocess
    import sys

    import uvicorn

    settings = get_settings()
    # Its own process, not a thread: the worker's CPU work then never slows the API's answers.
    # preexec_fn is safe here: no other thread has started yet. A session of its own: Ctrl-C reaches
    # serve only, which then stops the worker with one SIGTERM (two would abort its current job).
    child = (
        subprocess.Popen(
            [sys.executable, "-m", "siyu.cli", "worker"],
            preexec_fn=_die_with_parent,  # noqa: PLW1509
            start_new_session=True,
        )
        if with_worker
        else None
    )
    try:
        uvicorn.run(
            "siyu.app:create_app",
            factory=True,
            host=host or settings.host,
            port=port or settings.port,
            workers=workers,
            reload=reload,
        )
    finally:
        if child is not None:
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, help="jobs run at once in this process")] = 1,
    once: Annotated[bool, typer.Option(help="run the jobs due now, then exit")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="log at DEBUG: each pipeline step's events and seconds per phase")
    ] = False,
) -> None:
    """Run background jobs (and cron ticks) until stopped with Ctrl-C / SIGTERM."""
    import logging

    from siyu.db import Database, create_db_engine
    from siyu.jobs.worker import load_job_modules, run_worker
    from siyu.kit.heap import settle_after_startup
    from siyu.usermodel.pipeline import start_worker_database

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if verbose:  # ours only: SQLAlchemy's and the HTTP clients' DEBUG would drown it
        logging.getLogger("siyu").setLevel(logging.DEBUG)
    settings = get_settings()
    database = Database(create_db_engine(settings.database_url, settings), settings)
    started = time.monotonic()
    warmed = start_worker_database(database)
    if warmed:
        logging.getLogger("siyu.worker").info(
            "read %d tables and indexes into the writer cache in %.1fs", len(warmed), time.monotonic() - started
        )
    load_job_modules(settings)
    settle_after_startup()
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


@usermodel_app.command("run")
def usermodel_run() -> None:
    """Process every pending event and changed contact now (workers do this continuously)."""
    from siyu.db import Database, create_db_engine
    from siyu.usermodel.pipeline import catch_up

    settings = get_settings()
    database = Database(create_db_engine(settings.database_url, settings), settings)
    try:
        done = catch_up(database)
    finally:
        database.dispose()
    console.print(f"processed {done} events and changed contacts")


@usermodel_app.command("rebuild")
def usermodel_rebuild(workspace: Annotated[int, typer.Option(help="workspace id")]) -> None:
    """Recompute computed properties from the raw events, then scores, smart tags and segments (repair)."""
    from siyu.usermodel.pipeline import rebuild_workspace
    from siyu.workspaces.service import get_workspace

    with unit_of_work() as session:
        get_workspace(session, workspace)
        read = rebuild_workspace(session, workspace)
    console.print(f"rebuilt workspace {workspace} from {read} events")


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


@import_app.command("contacts")
def import_contacts_command(
    file: Annotated[Path, typer.Argument(help=".xlsx or .csv (UTF-8 or GBK); the first row names the columns")],
    workspace: Annotated[int, typer.Option(help="workspace id")],
    mapping: Annotated[
        Path | None, typer.Option(help='JSON {"column header": target or null}, laid over the guessed mapping')
    ] = None,
    skip_bad_rows: Annotated[bool, typer.Option(help="import the good rows and list the bad ones")] = False,
    create_tags: Annotated[bool, typer.Option(help="create tags the sheet names that do not exist")] = True,
    errors: Annotated[
        Path | None, typer.Option(help="where to write the bad rows (default: FILE-errors.csv beside FILE)")
    ] = None,
) -> None:
    """Import contacts from a customer sheet: all or nothing unless --skip-bad-rows."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    import siyu.models  # noqa: F401 - every table, for the foreign keys of the rows written
    from siyu.auth.principal import Principal
    from siyu.auth.scopes import ALL_SCOPES
    from siyu.exports.writers import write_csv, write_xlsx
    from siyu.imports import service
    from siyu.imports.mapping import parse_mapping_json
    from siyu.imports.models import ImportStatus
    from siyu.imports.reader import open_table
    from siyu.workspaces.models import Workspace

    if not file.is_file():
        err.print(f"[red]error:[/red] {file} is not a file")
        raise typer.Exit(1)
    given = None
    if mapping is not None:
        try:
            given = parse_mapping_json(json.loads(mapping.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            err.print(f"[red]error:[/red] {mapping}: {exc}")
            raise typer.Exit(1) from None
        except SiyuError as exc:
            err.print(f"[red]error:[/red] {mapping}: {exc.message}")
            raise typer.Exit(1) from None
    principal = Principal(workspace_id=workspace, scopes=ALL_SCOPES)
    options = service.Options(skip_bad_rows=skip_bad_rows, create_tags=create_tags)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with file.open("rb") as source, Progress(*columns, console=err) as progress:
        tasks: dict[str, TaskID] = {}

        def report(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        with unit_of_work() as session:
            if session.get(Workspace, workspace) is None:
                raise SiyuError(f"workspace {workspace} does not exist; see `siyu workspace list`")
            table = open_table(source, file.name)
            region = get_settings().default_phone_region
            record = service.import_contacts(session, principal, table, given, options, region=region, progress=report)
            summary = service.summary(record)
            error_rows = list(service.error_file_rows(record)) if record.errors else []
    if table.encoding:
        console.print(f"read {file.name} as {table.encoding}")
    if error_rows:
        errors = errors or file.with_name(f"{file.stem}-errors.csv")
        (write_xlsx if errors.suffix.lower() == ".xlsx" else write_csv)(errors, error_rows)
    if record.status is ImportStatus.refused:
        err.print(f"[red]refused:[/red] {record.errors} of {record.rows} rows have problems; nothing was imported")
        for number, _cells, reason in (record.error_rows or {}).get("rows", [])[:20]:
            err.print(f"  row {number}: {reason}")
        err.print(f"every bad row with its reason: {errors}; fix them, or import again with --skip-bad-rows")
        raise typer.Exit(1)
    table_out = Table("rows", "created", "updated", "skipped", "errors", "tags created")
    table_out.add_row(*(str(summary[k]) for k in ("rows", "created", "updated", "skipped", "errors", "tags_created")))
    console.print(table_out)
    console.print(f"import {record.id} done in workspace {workspace}")
    if error_rows:
        console.print(f"{record.errors} bad rows skipped; they are listed with their reasons in {errors}")


@app.command()
def demo(
    contacts: Annotated[int, typer.Option(min=1, help="people to simulate; above 20,000 they arrive in bulk")] = 2000,
    weeks: Annotated[int, typer.Option(min=1, max=52, help="weeks of life to simulate, ending now")] = 6,
    seed: Annotated[int, typer.Option(help="the same seed builds the same workspace")] = 4,
    workspace_name: Annotated[str, typer.Option(help="the demo workspace's name")] = "siyu 演示 Demo",
    admin_email: Annotated[str, typer.Option(help="the admin who signs in to the console")] = "demo@siyu.local",
    admin_password: Annotated[
        str | None, typer.Option(help="the admin's password, printed at the end (default siyu-demo-2026)")
    ] = None,
    reset: Annotated[
        bool, typer.Option(help="delete the demo workspace of that name first, then build it again")
    ] = False,
    if_missing: Annotated[bool, typer.Option(help="do nothing (exit 0) when the demo workspace exists")] = False,
    bulk: Annotated[
        bool | None, typer.Option("--bulk/--no-bulk", help="force or forbid bulk arrivals (default: by size)")
    ] = None,
) -> None:
    """Build a living demo workspace: staff, channels, codes, and weeks of simulated customers."""

    from pydantic import ValidationError
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    import siyu.models  # noqa: F401 - every table, for the foreign keys of the rows written
    from siyu.db import Database, create_db_engine
    from siyu.demo.build import (
        DEFAULT_PASSWORD,
        DemoOptions,
        build_demo,
        building_name,
        delete_workspace,
        find_demo,
    )
    from siyu.staff.schemas import StaffCreate

    admin_password = admin_password or DEFAULT_PASSWORD
    try:
        StaffCreate(email=admin_email, name="admin", role="admin", password=admin_password)  # type: ignore[arg-type]
    except ValidationError as exc:
        for e in exc.errors():
            err.print(f"[red]error:[/red] {'.'.join(str(p) for p in e['loc'])}: {e['msg']}")
        raise typer.Exit(1) from None
    settings = get_settings()
    database = Database(create_db_engine(settings.database_url, settings), settings)
    try:
        with database.transaction() as session:
            interrupted = find_demo(session, building_name(workspace_name))
            if interrupted is not None:
                err.print(f"deleting workspace {interrupted.id} ({interrupted.name}), left by an interrupted build …")
                delete_workspace(session, interrupted.id)
            existing = find_demo(session, workspace_name)
            if existing is not None:
                if if_missing:
                    console.print(f"demo workspace {existing.id} ({existing.name}) exists; nothing to do")
                    return
                if not reset:
                    err.print(
                        f"[red]error:[/red] the demo workspace {existing.name!r} exists already (id {existing.id}); "
                        "run `siyu demo --reset` to delete it and build it again"
                    )
                    raise typer.Exit(1)
                err.print(f"deleting demo workspace {existing.id} ({existing.name}) …")
                delete_workspace(session, existing.id)
        options = DemoOptions(
            contacts=contacts,
            weeks=weeks,
            seed=seed,
            workspace_name=workspace_name,
            admin_email=admin_email,
            admin_password=admin_password,
            bulk=bulk,
        )
        columns = (
            TextColumn("{task.description:<16}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=err) as progress:
            tasks: dict[str, TaskID] = {}

            def report(stage: str, done: int, total: int | None) -> None:
                if stage not in tasks:
                    tasks[stage] = progress.add_task(stage, total=total)
                progress.update(tasks[stage], completed=done, total=total)

            try:
                result = build_demo(database, options, progress=report)
            except SiyuError as exc:
                err.print(f"[red]error:[/red] {exc.message}")
                raise typer.Exit(1) from None
        # computed properties, scores and smart tags for the simulated weeks, so segments work at once
        from siyu.usermodel.pipeline import catch_up

        err.print("user model: reading the simulated events …")
        catch_up(database)
        from siyu.demo.build import DEMO_JOURNEY_NAME, start_demo_journeys

        start_demo_journeys(database, result.workspace_id)
        err.print(f"journey {DEMO_JOURNEY_NAME!r} is live on the sandbox channel for people added from now on")
    finally:
        database.dispose()
    table = Table("event type", "count")
    for name, count in result.events.items():
        table.add_row(name, f"{count:,}")
    console.print(table)
    mode = "bulk" if result.bulk else "one by one through record_add"
    console.print(
        f"demo workspace {result.workspace_id} built: {result.contacts:,} contacts ({mode}), "
        f"{sum(result.events.values()):,} events in {result.seconds['total']:.1f}s"
    )
    console.print(f"sign in to the console at /console as {result.admin_email} with password {result.admin_password}")


if __name__ == "__main__":
    app()
