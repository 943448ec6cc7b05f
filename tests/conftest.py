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

from siyu.config import Settings
from siyu.db import Base, Database, create_db_engine
from siyu.kit import time as siyu_time
from siyu.migrations.runner import upgrade

BACKEND = os.environ.get("SIYU_TEST_BACKEND", "sqlite")
POSTGRES_ADMIN_URL = os.environ.get(
    "SIYU_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


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
    with database.engine.begin() as conn:
        if database.sqlite:
            for name in tables:
                conn.exec_driver_sql(f'DELETE FROM "{name}"')
        else:
            conn.exec_driver_sql(
                "TRUNCATE " + ", ".join(f'"{n}"' for n in tables) + " RESTART IDENTITY CASCADE"
            )


@pytest.fixture
def db(migrated_engine) -> Iterator[Database]:  # type: ignore[no-untyped-def]
    database = Database(migrated_engine)
    _empty_all_tables(database)
    yield database


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
