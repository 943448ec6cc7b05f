"""Test fixtures: a real database per test session (SQLite, or PostgreSQL with SIYU_TEST_BACKEND=postgresql).

The schema is built with `alembic upgrade head`, exactly as production builds it; each test starts from
empty tables. Run the suite on PostgreSQL with `SIYU_TEST_BACKEND=postgresql pytest` (make test does both).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from siyu.config import Settings
from siyu.db import Base, Database, create_db_engine
from siyu.events.inbox import inbox_engine
from siyu.kit import time as siyu_time
from siyu.migrations.runner import upgrade

BACKEND = os.environ.get("SIYU_TEST_BACKEND", "sqlite")
POSTGRES_ADMIN_URL = os.environ.get("SIYU_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def pytest_report_header() -> str:
    return f"siyu database backend: {BACKEND}"


def _worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if BACKEND == "sqlite":
        path = tmp_path_factory.mktemp("db") / "siyu.db"
        yield f"sqlite:///{path}"
        return
    if BACKEND != "postgresql":
        raise RuntimeError(f"SIYU_TEST_BACKEND must be sqlite or postgresql, not {BACKEND!r}")
    name = f"siyu_test_{_worker_id()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(database_url=database_url, sqlite_synchronous="NORMAL", _env_file=None)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def migrated_engine(settings: Settings):  # type: ignore[no-untyped-def]
    engine = create_db_engine(settings.database_url, settings)
    upgrade(engine)
    yield engine
    engine.dispose()


def _empty_all_tables(database: Database) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    if database.sqlite:
        with database.engine.begin() as conn:
            for name in tables:
                conn.exec_driver_sql(f'DELETE FROM "{name}"')
        with inbox_engine(database).begin() as conn:  # received batches wait in a file of their own
            conn.exec_driver_sql("DELETE FROM event_inbox")
        return
    truncate = "TRUNCATE " + ", ".join(f'"{n}"' for n in tables) + " RESTART IDENTITY CASCADE"
    for attempt in range(5):
        try:
            with database.engine.begin() as conn:
                conn.exec_driver_sql(truncate)
            return
        except OperationalError as exc:
            # A previous test's live server may still be finishing a read when TRUNCATE takes its locks
            # table by table; PostgreSQL breaks the deadlock by failing one side: try again.
            if "deadlock detected" not in str(exc) or attempt == 4:
                raise


@pytest.fixture
def db(migrated_engine, settings: Settings) -> Iterator[Database]:  # type: ignore[no-untyped-def]
    database = Database(migrated_engine, settings)
    database.keep_one_writer()  # as `siyu worker` does: every write on one connection, in turn
    _empty_all_tables(database)
    yield database
    database.close_siblings()


class FrozenClock:
    """A clock tests move by hand: `clock.advance(minutes=5)`. No test sleeps."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Iterator[FrozenClock]:
    frozen = FrozenClock(dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC))
    siyu_time.set_clock(frozen)
    yield frozen
    siyu_time.set_clock(None)


@pytest.fixture
def project_root() -> Path:
    return Path(__file__).resolve().parents[1]


# --- the application and callers -------------------------------------------------------------


from dataclasses import dataclass  # noqa: E402

from fastapi.testclient import TestClient  # noqa: E402

from siyu.app import create_app  # noqa: E402
from siyu.auth.scopes import Scope  # noqa: E402
from siyu.auth.service import create_api_key  # noqa: E402
from siyu.staff.models import Role  # noqa: E402
from siyu.staff.schemas import StaffCreate  # noqa: E402
from siyu.staff.service import add_staff  # noqa: E402
from siyu.workspaces.service import create_workspace  # noqa: E402

PASSWORD = "correct horse battery"


@dataclass
class Tenant:
    """A workspace with an admin API key and a client that sends it."""

    workspace_id: int
    key: str
    client: TestClient

    def as_staff(self, email: str, role: Role = Role.consultant, name: str = "员工") -> tuple[int, TestClient]:
        """Adds a staff member, signs them in and returns (staff id, a client carrying their session)."""
        created = self.client.post(
            "/api/v1/staff", json={"email": email, "name": name, "role": role.value, "password": PASSWORD}
        )
        assert created.status_code == 201, created.text
        staff_id = created.json()["id"]
        signed = self.client.post(
            "/api/v1/auth/sessions", json={"email": email, "password": PASSWORD, "workspace_id": self.workspace_id}
        )
        assert signed.status_code == 201, signed.text
        client = TestClient(self.client.app, headers={"Authorization": f"Bearer {signed.json()['token']}"})
        return staff_id, client


@pytest.fixture
def app(db: Database, settings: Settings):  # type: ignore[no-untyped-def]
    return create_app(settings=settings, database=db)


@pytest.fixture
def make_tenant(app, db: Database):  # type: ignore[no-untyped-def]
    def make(name: str = "品牌A", scopes: frozenset[Scope] | None = None) -> Tenant:
        with db.transaction() as session:
            workspace = create_workspace(session, name)
            _, key = create_api_key(
                session,
                workspace_id=workspace.id,
                name="test",
                scopes=scopes if scopes is not None else frozenset(Scope),
            )
            workspace_id = workspace.id
        return Tenant(workspace_id, key, TestClient(app, headers={"Authorization": f"Bearer {key}"}))

    return make


@pytest.fixture
def tenant(make_tenant) -> Tenant:  # type: ignore[no-untyped-def]
    return make_tenant()


@pytest.fixture
def anonymous(app) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(app)


__all__ = ["PASSWORD", "Role", "StaffCreate", "Tenant", "add_staff"]
