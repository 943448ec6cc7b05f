"""Engine, sessions and the declarative base: one model, two databases (SQLite embedded, PostgreSQL).

SQLite notes: WAL lets readers run beside the one writer; `busy_timeout` makes a second writer
wait instead of failing. pysqlite's own transaction handling is switched off so that we emit BEGIN
ourselves: writes use `BEGIN IMMEDIATE`, which takes the write lock up front. A deferred
transaction that reads first and then writes can fail at once with "database is locked" when it
tries to upgrade, without honouring the busy timeout.

A writer waiting for the lock polls every few milliseconds (`_begin_immediate`) instead of leaving it
to SQLite's busy handler, whose sleeps grow to 100 ms: with that, a short writer (an event batch)
waiting behind a long one (a pipeline step) would miss the pause the long one leaves between its
transactions and starve.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Container, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import BigInteger, Connection, DateTime, Engine, Integer, MetaData, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from siyu.config import Settings, get_settings

log = logging.getLogger("siyu.db")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL; INTEGER on SQLite so the column is the rowid alias (fast, autoincrementing).
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on both databases (stored naive UTC, returned aware)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use siyu.kit.time.utcnow()")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)


# Table option for per-contact tables read and rewritten a contact at a time: on SQLite the rows are
# stored in primary-key order (WITHOUT ROWID), so a contact's rows share a page (migration 0023).
CLUSTERED: dict[str, Any] = {"sqlite_with_rowid": False}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def is_sqlite(engine_or_url: Engine | str) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.get_backend_name() == "sqlite"


def create_db_engine(
    url: str | None = None,
    settings: Settings | None = None,
    *,
    sqlite_pool_size: int | None = None,
    sqlite_cache_mb: int | None = None,
) -> Engine:
    """The engine for `url` (default: the settings'). On SQLite, `sqlite_pool_size` caps its connections
    (no overflow: a caller waits for one up to the busy timeout) and `sqlite_cache_mb` sets their page
    cache (default settings.sqlite_cache_mb); Database.keep_one_writer() uses both."""
    settings = settings or get_settings()
    url = url or settings.database_url
    parsed = make_url(url)
    kwargs: dict[str, Any] = {
        "echo": settings.database_echo,
        "json_serializer": _json_dumps,
        "json_deserializer": orjson.loads,
    }
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False}
        if sqlite_pool_size is not None:
            kwargs.update(
                pool_size=sqlite_pool_size, max_overflow=0, pool_timeout=settings.sqlite_busy_timeout_ms / 1000
            )
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine, settings, sqlite_cache_mb)
        return engine
    kwargs["pool_pre_ping"] = True
    return create_engine(url, **kwargs)


def _configure_sqlite(engine: Engine, settings: Settings, cache_mb: int | None = None) -> None:
    cache_mb = settings.sqlite_cache_mb if cache_mb is None else cache_mb

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(settings.sqlite_busy_timeout_ms)}")
        cursor.execute(f"PRAGMA synchronous={settings.sqlite_synchronous}")
        cursor.execute(f"PRAGMA cache_size={-1024 * int(cache_mb)}")
        if settings.sqlite_checkpoint_ms > 0:  # a Checkpointer thread copies the log; commits only past this
            cursor.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_CHECKPOINT_PAGES}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    busy_timeout_ms = int(settings.sqlite_busy_timeout_ms)

    configured = settings.sqlite_synchronous.upper()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        # A connection's safety level is set between transactions (SQLite refuses it inside one).
        wanted = options.get("sqlite_synchronous", configured)
        info = conn.connection.info
        if info.get("synchronous", configured) != wanted:
            conn.connection.dbapi_connection.execute(f"PRAGMA synchronous={wanted}")
            info["synchronous"] = wanted
        mode = options.get("sqlite_begin", "IMMEDIATE")
        if mode == "IMMEDIATE":
            _begin_immediate(conn.connection.dbapi_connection, busy_timeout_ms)
        else:
            conn.exec_driver_sql(f"BEGIN {mode}")


# ~400 MB of log: a commit checkpoints only if the Checkpointer does not keep up. Above what one pipeline
# step writes at a million contacts (~55,000 pages), so that steps leave the copying to it (docs/adr/0012).
BACKSTOP_CHECKPOINT_PAGES = 100_000
LOCK_POLL_FIRST_S = 0.0005
LOCK_POLL_MAX_S = 0.004


def _begin_immediate(dbapi_connection: Any, busy_timeout_ms: int) -> None:
    """BEGIN IMMEDIATE, retried every 0.5-4 ms while another connection holds the write lock, until the
    busy timeout; SQLite's own busy handling is off meanwhile so each try fails at once."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout=0")
        deadline = time.monotonic() + busy_timeout_ms / 1000
        wait = LOCK_POLL_FIRST_S
        while True:
            try:
                cursor.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() + wait > deadline:
                    raise
            time.sleep(wait)
            wait = min(wait * 2, LOCK_POLL_MAX_S)
    finally:
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.close()


@contextmanager
def sqlite_cache(session: Session, megabytes: int) -> Iterator[None]:
    """At least this big a SQLite page cache for one large job on this session's connection (a full
    rebuild, whose upserts land all over tables of millions of rows), for the main file and for temp
    tables alike (a full scoring run keeps a row per contact in one; SQLite gives them 2 MB, and then
    writes them to a temporary file). Never smaller than the connection's own: shrinking drops cached
    pages (the worker's warmed writer). The connection's sizes come back after."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        yield
        return
    run = connection.exec_driver_sql
    page_kib = int(run("PRAGMA page_size").scalar() or 4096) // 1024
    before: dict[str, int] = {}
    for schema in ("main", "temp"):
        size = int(run(f"PRAGMA {schema}.cache_size").scalar() or -2000)
        before[schema] = size
        kib = -size if size < 0 else size * page_kib  # negative: KiB; positive: pages
        run(f"PRAGMA {schema}.cache_size={-max(kib, 1024 * megabytes)}")
    try:
        yield
    finally:
        for schema, size in before.items():
            run(f"PRAGMA {schema}.cache_size={size}")


class Database:
    """The engine plus two session factories: writers (BEGIN IMMEDIATE on SQLite) and readers."""

    def __init__(self, engine: Engine, settings: Settings | None = None) -> None:
        self.engine = engine
        self.sqlite = is_sqlite(engine)
        self._settings = settings
        self._siblings: dict[str, Engine] = {}
        self._siblings_lock = threading.Lock()
        self._checkpointer: Checkpointer | None = None
        reader_bind = engine.execution_options(sqlite_begin="DEFERRED") if self.sqlite else engine
        self._reader_bind = reader_bind
        self._writer = sessionmaker(expire_on_commit=False, autoflush=True)
        self._reader = sessionmaker(bind=reader_bind, expire_on_commit=False, autoflush=True)
        self._derived = sessionmaker(expire_on_commit=False, autoflush=True)
        self._bind_writers(engine)
        self._writer_engine: Engine | None = None

    def _bind_writers(self, engine: Engine) -> None:
        """Durable writes on `engine`; derived ones too, relaxed to synchronous=NORMAL on SQLite when the
        configured level is stricter (see transaction())."""
        relaxed = self.sqlite and (self._settings or get_settings()).sqlite_synchronous.upper() in ("FULL", "EXTRA")
        self._writer.configure(bind=engine)
        self._derived.configure(bind=engine.execution_options(sqlite_synchronous="NORMAL") if relaxed else engine)

    def keep_one_writer(self) -> None:
        """On SQLite, for a long-lived process (`siyu worker`; the tests): from now on every write
        transaction of this Database runs on one connection, in turn, with a page cache of
        settings.sqlite_writer_cache_mb. SQLite empties a connection's cache whenever another connection
        has written, so writers spread over a pool (the drain, the pipeline) each began cold and read
        their pages from the disk again; one writer connection keeps them (docs/adr/0011). Writers took
        turns on SQLite's one write lock already; now they take turns on this connection first, waiting
        up to the busy timeout (and then, behind another process, up to that again for the lock).
        Readers keep their own connections. Nothing changes on PostgreSQL or an in-memory database."""
        main = self.engine.url
        in_memory = not main.database or main.database == ":memory:" or main.query.get("mode") == "memory"
        if not self.sqlite or self._writer_engine is not None or in_memory:
            return
        settings = self._settings or get_settings()
        url = main.render_as_string(hide_password=False)
        writer = create_db_engine(url, settings, sqlite_pool_size=1, sqlite_cache_mb=settings.sqlite_writer_cache_mb)
        self._writer_engine = writer
        self._bind_writers(writer)

    def session(self, *, write: bool = True, durable: bool = True) -> Session:
        if not write:
            return self._reader()
        return self._writer() if durable else self._derived()

    @contextmanager
    def transaction(self, *, write: bool = True, durable: bool = True) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any error. Used at the edges only.

        `durable=False` is for writes of state computed from other data and computed again if lost (the
        user-model pipeline's steps): on SQLite the commit does not wait for the disk (synchronous=
        NORMAL; an application crash loses nothing, a power cut may lose the last such commits whole, as
        if they had not run). The WAL is written in order, so any later durable commit (one that
        answers an API call or hands work on) makes these durable too."""
        session = self.session(write=write, durable=durable)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def warm_writer_cache(self, tables: Iterable[str], *, skip: Container[str] = ()) -> list[str]:
        """Reads whole tables and their indexes (but those named in `skip`) through the connection
        keep_one_writer() keeps, so the work that follows finds their pages in its cache instead of on
        the disk. One b-tree per read transaction: a writer waits for one at most, not the whole
        warm-up. When they do not all fit, the cache keeps the last ones read. Returns the b-trees read
        (none without keep_one_writer(): PostgreSQL, an in-memory SQLite database)."""
        if self._writer_engine is None:
            return []
        ahead = _read_in_order(str(self.engine.url.database))
        try:
            return _read_btrees(self._writer_engine.execution_options(sqlite_begin="DEFERRED"), tables, skip)
        finally:
            ahead.terminate()
            ahead.wait()

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read transaction on a bare connection: for the few reads on every request's path (the
        caller's credential, a workspace's time zone), where a Session's set-up costs more than the
        query. Takes no write lock."""
        with self._reader_bind.connect() as connection, connection.begin():
            yield connection

    def sibling(self, name: str) -> Engine:
        """On SQLite, an engine for a companion file beside the main one (`<main>-<name>.db`, same PRAGMAs)
        with its own write lock; on PostgreSQL the main engine, whose writers do not queue on one lock.
        Opened once per Database and closed by dispose(), like the main engine."""
        if not self.sqlite:
            return self.engine
        with self._siblings_lock:
            engine = self._siblings.get(name)
            if engine is None:
                main = self.engine.url.database
                if not main or main == ":memory:":
                    raise RuntimeError(f"an in-memory SQLite database has no file beside it for {name!r}")
                path = Path(main).resolve()
                sibling = path.with_name(f"{path.stem}-{name}{path.suffix or '.db'}")
                url = self.engine.url.set(database=str(sibling)).render_as_string(hide_password=False)
                engine = self._siblings[name] = create_db_engine(url, self._settings)
            return engine

    def close_siblings(self) -> None:
        """Closes the connections this Database opened itself: the companion files' and the one writer's
        (the main engine may be shared and stays open)."""
        with self._siblings_lock:
            for engine in self._siblings.values():
                engine.dispose()
            self._siblings.clear()
        if self._writer_engine is not None:
            self._writer_engine.dispose()

    def sqlite_files(self) -> list[str]:
        """The SQLite files this Database has open: the main one and its companions."""
        if not self.sqlite:
            return []
        with self._siblings_lock:
            engines = [self.engine, *self._siblings.values()]
        return [str(e.url.database) for e in engines if e.url.database and e.url.database != ":memory:"]

    def start_checkpointer(self) -> None:
        """In a server or worker process on SQLite (settings.sqlite_checkpoint_ms): checkpoints from a thread
        of its own, so commits need not (stopped by dispose)."""
        interval = (self._settings or get_settings()).sqlite_checkpoint_ms
        if self.sqlite and interval > 0 and self._checkpointer is None:
            self._checkpointer = Checkpointer(self, interval / 1000)
            self._checkpointer.start()

    def checkpoint_soon(self) -> None:
        """After a commit that wrote many pages (a pipeline step, a drain's batches): the checkpointer, if
        this process runs one, copies the log now instead of at its next tick (docs/adr/0012)."""
        if self._checkpointer is not None:
            self._checkpointer.nudge()

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self.close_siblings()
        self.engine.dispose()


def _read_btrees(reader: Engine, tables: Iterable[str], skip: Container[str]) -> list[str]:
    read: list[str] = []
    for table in tables:
        with reader.connect() as connection, connection.begin():
            indexes = connection.exec_driver_sql(
                "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = ? ORDER BY name", (table,)
            ).all()
            own = _without_rowid_key(connection, table, listed={name for name, _ in indexes})
        for name in [table, *(name for name, sql in indexes if not _is_partial(sql))]:
            if name in skip:
                continue
            with reader.connect() as connection, connection.begin():
                connection.exec_driver_sql(btree_scan(table, own if name == table else name))
            read.append(name)
    return read


def _without_rowid_key(connection: Connection, table: str, *, listed: Container[str]) -> str | None:
    """The name of a WITHOUT ROWID table's primary key, whose b-tree is the table itself: the only key not
    among the table's indexes in sqlite_schema (`listed`). None for a rowid table."""
    for _seq, name, _unique, origin, _partial in connection.exec_driver_sql(
        "SELECT * FROM pragma_index_list(?)", (table,)
    ):
        if origin == "pk" and name not in listed:
            return str(name)
    return None


def btree_scan(table: str, index: str | None) -> str:
    """A query that walks every page of one b-tree, and reads no row: an index's, or the table's own when
    `index` is None (a rowid table) or its primary key (a WITHOUT ROWID table: without INDEXED BY, SQLite
    counts through a smaller index that holds the key, NOT INDEXED or not). "WHERE 1" keeps SQLite from
    counting through whichever index it thinks smallest instead (its count(*) shortcut ignores INDEXED BY)."""
    how = f'INDEXED BY "{index}"' if index else "NOT INDEXED"
    return f'SELECT count(*) FROM "{table}" {how} WHERE 1'


def _is_partial(sql: str | None) -> bool:
    """A partial index (CREATE INDEX ... WHERE ...): only its own condition can use it; they are small, and
    the warm-up leaves them to be read when needed. Autoindexes have no SQL."""
    return sql is not None and " WHERE " in sql.upper()


# Reads a file from start to end in large reads, then exits.
_READ_FILE = "import sys\nwith open(sys.argv[1], 'rb', buffering=0) as f:\n    while f.read(8 << 20):\n        pass\n"


def _read_in_order(path: str) -> subprocess.Popen[bytes]:
    """Reads the database file in order, at the disk's full speed, beside the b-tree scans (whose pages lie
    all over it), so that most of their reads find it in memory. In a process of its own: closing any
    descriptor of the file in this process would drop every POSIX lock SQLite holds on it here, and
    another process could then take itself for the file's last user and reset the log under us."""
    return subprocess.Popen(  # noqa: S603 - this interpreter, our own code, the configured database file
        [sys.executable, "-c", _READ_FILE, path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


class Checkpointer:
    """Copies each open SQLite file's write-ahead log into the file every `interval` seconds (a PASSIVE
    checkpoint: it waits for no reader or writer). Left to SQLite, the commit that takes the log past
    1,000 pages copies it, holding up its caller (an API answer, the drain, a pipeline step) for what
    can be most of its time at a million contacts; this thread does it beside them, without the GIL."""

    def __init__(self, db: Database, interval: float) -> None:
        self.db, self.interval = db, interval
        self._stop = threading.Event()
        self._nudged = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpointer", daemon=True)
        self.checkpoints = 0
        self.last: dict[str, tuple[int, int, int]] = {}  # path -> (busy, frames in the log, frames copied)

    def start(self) -> None:
        self._thread.start()

    def nudge(self) -> None:
        """Copy now rather than at the next tick (Database.checkpoint_soon)."""
        self._nudged.set()

    def stop(self) -> None:
        self._stop.set()
        self._nudged.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        connections: dict[str, sqlite3.Connection] = {}
        try:
            while True:
                self._nudged.wait(self.interval)
                self._nudged.clear()
                if self._stop.is_set():
                    break
                for path in self.db.sqlite_files():
                    conn = connections.get(path)
                    if conn is None:
                        conn = connections[path] = sqlite3.connect(path, check_same_thread=False)
                    try:
                        busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                        self.last[path] = (busy, frames, copied)
                        self.checkpoints += 1
                    except sqlite3.Error as exc:  # busy, or the file went away: the next tick tries again
                        log.debug("checkpoint of %s skipped: %s", path, exc)
        finally:
            for conn in connections.values():
                conn.close()


__all__ = ["Base", "BigIntPK", "Database", "UTCDateTime", "create_db_engine", "is_sqlite", "sqlite_cache"]
