"""Durable and derived writes on SQLite: the pipeline's steps commit with synchronous=NORMAL, every
other write with the configured level (FULL by default), on the same pooled connections."""

from __future__ import annotations

import os
from contextlib import contextmanager

import pytest

from siyu.config import Settings
from siyu.db import Database, create_db_engine
from siyu.usermodel import pipeline

LEVELS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def _level(session) -> str:  # type: ignore[no-untyped-def]
    return LEVELS[session.connection().exec_driver_sql("PRAGMA synchronous").scalar()]


@pytest.mark.skipif(os.environ.get("SIYU_TEST_BACKEND", "sqlite") != "sqlite", reason="a SQLite setting")
@pytest.mark.parametrize(("configured", "derived"), [("FULL", "NORMAL"), ("EXTRA", "NORMAL"), ("OFF", "OFF")])
def test_derived_writes_relax_only_their_own_transaction(tmp_path, configured, derived) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(database_url=f"sqlite:///{tmp_path}/siyu.db", sqlite_synchronous=configured)
    db = Database(create_db_engine(settings.database_url, settings), settings)
    try:
        for _ in range(3):  # the same pooled connection goes back and forth
            with db.transaction(durable=False) as session:
                assert _level(session) == derived
            with db.transaction() as session:
                assert _level(session) == configured
            with db.transaction(write=False) as session:
                assert _level(session) == configured
    finally:
        db.dispose()


def test_pipeline_steps_are_derived_writes(db, tenant, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    event = {
        "id": "d1",
        "type": "content.viewed",
        "contact": {"phone": "13800000001"},
        "properties": {"content_id": "c"},
    }
    assert tenant.client.post("/api/v1/events?wait=true", json={"events": [event]}).status_code == 200
    kinds: list[bool] = []
    real = db.transaction

    @contextmanager
    def transaction(*, write: bool = True, durable: bool = True):  # type: ignore[no-untyped-def]
        with real(write=write, durable=durable) as session:
            if write:
                kinds.append(durable)
            yield session

    monkeypatch.setattr(db, "transaction", transaction)
    assert pipeline.run_pending(db, yield_seconds=0) > 0
    assert kinds and not any(kinds)  # every step a derived write
