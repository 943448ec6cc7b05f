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


def _viewed(event_id: str, phone: str) -> dict[str, object]:
    return {"id": event_id, "type": "content.viewed", "contact": {"phone": phone}, "properties": {"content_id": "c"}}


def test_pipeline_steps_are_derived_writes(db, tenant, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    sent = tenant.client.post("/api/v1/events?wait=true", json={"events": [_viewed("d1", "13800000001")]})
    assert sent.status_code == 200
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


@pytest.mark.skipif(os.environ.get("SIYU_TEST_BACKEND", "sqlite") != "sqlite", reason="a SQLite setting")
def test_the_checkpointer_copies_the_log_so_commits_need_not(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """With a Checkpointer (serve, worker), a commit does not checkpoint below ~400 MB of log, and the
    thread brings the log back into the file; stopped by dispose."""
    import time

    from sqlalchemy import text

    settings = Settings(database_url=f"sqlite:///{tmp_path}/siyu.db", sqlite_checkpoint_ms=50)
    db = Database(create_db_engine(settings.database_url, settings), settings)
    with db.transaction() as session:
        assert session.connection().exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 100_000
        session.execute(text("CREATE TABLE filler (x BLOB)"))
        for _ in range(3000):  # ~6 MB: past SQLite's own 1,000-page threshold
            session.execute(text("INSERT INTO filler VALUES (randomblob(2000))"))

    main = tmp_path / "siyu.db"
    before = main.stat().st_size
    assert before < 1_000_000  # the rows are only in the log: the commit did not copy it
    try:
        db.start_checkpointer()
        checkpointer = db._checkpointer
        assert checkpointer is not None
        deadline = time.monotonic() + 10
        while checkpointer.checkpoints == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        busy, frames, copied = checkpointer.last[str(main)]
        assert busy == 0 and frames > 1000 and copied == frames  # the whole log, by the thread
        assert main.stat().st_size > before + 4_000_000  # now in the file itself
        with db.transaction(write=False) as session:
            assert session.execute(text("SELECT count(*) FROM filler")).scalar() == 3000
    finally:
        db.dispose()
    assert not checkpointer._thread.is_alive()


@pytest.mark.skipif(os.environ.get("SIYU_TEST_BACKEND", "sqlite") != "sqlite", reason="a SQLite setting")
def test_checkpoint_soon_wakes_the_checkpointer_before_its_tick(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """After a large commit (a pipeline step, a drain) the log is copied at once, not at the next tick;
    without a checkpointer (PostgreSQL, tests) checkpoint_soon does nothing."""
    import time

    from sqlalchemy import text

    settings = Settings(database_url=f"sqlite:///{tmp_path}/siyu.db", sqlite_checkpoint_ms=600_000)
    db = Database(create_db_engine(settings.database_url, settings), settings)
    db.checkpoint_soon()  # no checkpointer yet: nothing happens
    try:
        db.start_checkpointer()
        checkpointer = db._checkpointer
        assert checkpointer is not None
        for round_ in range(2):
            with db.transaction() as session:
                if round_ == 0:
                    session.execute(text("CREATE TABLE filler (x BLOB)"))
                session.execute(text("INSERT INTO filler SELECT randomblob(2000) FROM json_each(json('[1,2,3,4,5]'))"))
            seen = checkpointer.checkpoints
            db.checkpoint_soon()
            deadline = time.monotonic() + 10  # the tick is ten minutes away
            while checkpointer.checkpoints == seen and time.monotonic() < deadline:
                time.sleep(0.01)
            assert checkpointer.checkpoints > seen, f"round {round_}: not woken"
            busy, frames, copied = checkpointer.last[str(tmp_path / "siyu.db")]
            assert busy == 0 and frames > 0 and copied == frames
    finally:
        db.dispose()
    assert not checkpointer._thread.is_alive()


@pytest.mark.skipif(os.environ.get("SIYU_TEST_BACKEND", "sqlite") != "sqlite", reason="a SQLite setting")
def test_one_writer_connection_serves_every_write_in_turn(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """keep_one_writer (siyu worker): durable and derived writes, from any thread, run on one connection
    with the writer's cache, so its pages outlive each transaction; readers keep their own connections;
    a second writer waits for the first instead of failing."""
    import threading
    import time

    from sqlalchemy import text

    settings = Settings(database_url=f"sqlite:///{tmp_path}/siyu.db", sqlite_writer_cache_mb=300)
    db = Database(create_db_engine(settings.database_url, settings), settings)
    db.keep_one_writer()

    def connection_of(session) -> tuple[int, int]:  # type: ignore[no-untyped-def]
        dbapi = session.connection().connection.dbapi_connection
        return id(dbapi), session.connection().exec_driver_sql("PRAGMA cache_size").scalar()

    try:
        seen: set[tuple[int, int]] = set()
        with db.transaction() as session:
            session.execute(text("CREATE TABLE t (x INTEGER)"))
            seen.add(connection_of(session))
        with db.transaction(durable=False) as session:
            seen.add(connection_of(session))

        def from_another_thread() -> None:
            with db.transaction() as session:
                seen.add(connection_of(session))

        other = threading.Thread(target=from_another_thread)
        other.start()
        other.join()
        assert len(seen) == 1 and next(iter(seen))[1] == -300 * 1024
        with db.transaction(write=False) as reader:
            assert connection_of(reader)[0] not in {s[0] for s in seen}

        order: list[str] = []
        with db.transaction() as first:
            first.execute(text("INSERT INTO t VALUES (1)"))

            def second() -> None:
                with db.transaction() as session:
                    session.execute(text("INSERT INTO t VALUES (2)"))
                    order.append("second")

            waiting = threading.Thread(target=second)
            waiting.start()
            time.sleep(0.2)
            order.append("first")
        waiting.join(timeout=10)
        assert order == ["first", "second"]
        with db.transaction(write=False) as reader:
            assert reader.execute(text("SELECT x FROM t ORDER BY x")).scalars().all() == [1, 2]
    finally:
        db.dispose()


@pytest.mark.skipif(os.environ.get("SIYU_TEST_BACKEND", "sqlite") != "sqlite", reason="a SQLite setting")
def test_warming_reads_each_named_btree_through_the_writer(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import Engine, event, text

    settings = Settings(database_url=f"sqlite:///{tmp_path}/siyu.db")
    db = Database(create_db_engine(settings.database_url, settings), settings)
    scans: list[str] = []

    def note(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("SELECT count(*)"):
            scans.append(statement)

    event.listen(Engine, "before_cursor_execute", note)
    try:
        with db.transaction() as session:
            session.execute(text("CREATE TABLE a (x INTEGER, y TEXT UNIQUE)"))
            session.execute(text("CREATE INDEX ix_a_x ON a (x)"))
            session.execute(text("CREATE INDEX ix_a_some ON a (x) WHERE x > 1"))  # partial: left out
            session.execute(text("INSERT INTO a VALUES (1, 'one'), (2, 'two')"))
            # A WITHOUT ROWID table is its key's b-tree; an index holding every column must not stand in.
            session.execute(text("CREATE TABLE w (k INTEGER, d TEXT, n INTEGER, PRIMARY KEY (k, d)) WITHOUT ROWID"))
            session.execute(text("CREATE INDEX ix_w_all ON w (n, d, k)"))
            session.execute(text("INSERT INTO w VALUES (1, 'a', 5), (2, 'b', 6)"))
        assert db.warm_writer_cache(["a"]) == []  # no kept writer: nothing to warm
        db.keep_one_writer()
        assert db.warm_writer_cache(["a"], skip={"a", "ix_a_x"}) == ["sqlite_autoindex_a_1"]
        scans.clear()
        assert db.warm_writer_cache(["a", "w"]) == ["a", "ix_a_x", "sqlite_autoindex_a_1", "w", "ix_w_all"]
        with db.transaction(write=False) as session:
            run = session.connection().exec_driver_sql
            roots = dict(run("SELECT name, rootpage FROM sqlite_schema WHERE tbl_name IN ('a', 'w')").all())
            opened = []  # the b-tree each scan walked: its OpenRead's p2, the root page
            for scan in scans:
                opened.append({row[3] for row in run("EXPLAIN " + scan).all() if row[1] == "OpenRead"})
        # each named b-tree itself, not whichever index SQLite thinks smallest
        names = ["a", "ix_a_x", "sqlite_autoindex_a_1", "w", "ix_w_all"]
        assert opened == [{roots[name]} for name in names]
        with pytest.raises(Exception, match="no such table"):
            db.warm_writer_cache(["missing"])
    finally:
        event.remove(Engine, "before_cursor_execute", note)
        db.dispose()


def test_the_worker_warms_the_tables_the_pipeline_works_on(db) -> None:  # type: ignore[no-untyped-def]
    """Every table WORKING_SET names exists (a rename would fail here, not at a worker's start)."""
    warmed = pipeline.warm_worker_cache(db)
    if not db.sqlite:
        assert warmed == []
        return
    assert "ix_event_contact_id_occurred_at" in warmed and "contact_event_stat" in warmed
    assert not set(warmed) & pipeline.NOT_IN_WORKING_SET
    assert warmed[-1] == "ix_event_contact_id_occurred_at"  # read last, kept first when the cache is short


@pytest.mark.skipif(os.environ.get("SIYU_TEST_BACKEND", "sqlite") != "sqlite", reason="a SQLite setting")
def test_a_large_job_gets_a_bigger_cache_for_the_file_and_temp_tables_then_gives_it_back(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from siyu.db import sqlite_cache

    settings = Settings(database_url=f"sqlite:///{tmp_path}/siyu.db", sqlite_cache_mb=64)
    db = Database(create_db_engine(settings.database_url, settings), settings)

    def sizes(session) -> tuple[int, int]:  # type: ignore[no-untyped-def]
        run = session.connection().exec_driver_sql
        return run("PRAGMA main.cache_size").scalar(), run("PRAGMA temp.cache_size").scalar()

    try:
        with db.transaction() as session:
            before = sizes(session)
            assert before[0] == -64 * 1024
            with sqlite_cache(session, 300):
                assert sizes(session) == (-300 * 1024, -300 * 1024)
            with sqlite_cache(session, 16):  # never smaller than the connection's own
                assert sizes(session) == (-64 * 1024, -16 * 1024)
            # main as it was; temp, unopened before (0), at SQLite's default
            assert sizes(session) == (before[0], before[1] or -2000)
    finally:
        db.dispose()


@pytest.mark.skipif(os.environ.get("SIYU_TEST_BACKEND", "sqlite") != "sqlite", reason="a SQLite setting")
def test_an_in_memory_database_keeps_its_own_connections() -> None:
    """A second engine would open another (empty) database: keep_one_writer leaves it alone."""
    from sqlalchemy import text

    url = "sqlite://"
    settings = Settings(database_url=url)
    db = Database(create_db_engine(url, settings), settings)
    try:
        db.keep_one_writer()
        with db.transaction() as session:
            session.execute(text("CREATE TABLE m (x INTEGER)"))
            session.execute(text("INSERT INTO m VALUES (1)"))
            assert session.execute(text("SELECT count(*) FROM m")).scalar() == 1
        assert db.warm_writer_cache(["m"]) == []
    finally:
        db.dispose()


@pytest.mark.skipif(os.environ.get("SIYU_TEST_BACKEND", "sqlite") != "sqlite", reason="a SQLite setting")
def test_a_worker_starts_on_a_database_not_migrated_yet(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The warm-up is a speed-up only: without the tables the worker starts, with one writer and a
    checkpointer, and the jobs say what is missing."""
    settings = Settings(database_url=f"sqlite:///{tmp_path}/siyu.db")
    db = Database(create_db_engine(settings.database_url, settings), settings)
    try:
        assert pipeline.start_worker_database(db) == []
        assert db._writer_engine is not None and db._checkpointer is not None
    finally:
        db.dispose()


def test_steps_and_drains_ask_for_a_checkpoint_after_their_commits(db, tenant, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from siyu.events import inbox

    calls: list[str] = []
    monkeypatch.setattr(db, "checkpoint_soon", lambda: calls.append("checkpoint"))
    assert tenant.client.post("/api/v1/events", json={"events": [_viewed("k1", "13800000002")]}).status_code == 202
    assert inbox.drain(db) == 1
    assert calls == ["checkpoint"]
    assert pipeline.run_pending(db, yield_seconds=0) > 0
    assert len(calls) >= 2
    done = len(calls)
    assert pipeline.run_pending(db, yield_seconds=0) == 0  # nothing to do: nothing written, no checkpoint
    assert len(calls) == done
