"""Shared benchmark helpers: temp databases, the real server as a child process, timing statistics."""

from __future__ import annotations

import io
import math
import os
import pstats
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import Engine

from siyu.config import Settings, get_settings

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
SERVER_START_TIMEOUT_S = 60.0


# --- results -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """One target of one benchmark: what was measured, the target, and whether it was met."""

    benchmark: str
    target: str
    measured: str
    met: bool

    def line(self) -> str:
        return f"  [{met_text(self.met):>7}] {self.benchmark}: {self.target} (measured {self.measured})"


def met_text(met: bool) -> str:
    return "met" if met else "NOT met"


def print_verdicts(verdicts: Sequence[Verdict], title: str = "targets") -> None:
    print(f"\n{title}:")
    for verdict in verdicts:
        print(verdict.line())


def banner(title: str) -> None:
    print()
    print("=" * 100)
    print(title)
    print("=" * 100)


def section(title: str) -> None:
    print(f"\n--- {title} " + "-" * max(0, 95 - len(title)))


# --- statistics --------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Stats:
    count: int
    p50: float
    p95: float
    mean: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        return cls(
            count=len(values),
            p50=percentile(values, 50),
            p95=percentile(values, 95),
            mean=sum(values) / len(values) if values else math.nan,
            low=min(values) if values else math.nan,
            high=max(values) if values else math.nan,
        )

    def ms(self) -> str:
        """p50 / p95 / min / max in milliseconds, for seconds-valued samples."""
        return (
            f"p50 {self.p50 * 1e3:8.2f} ms  p95 {self.p95 * 1e3:8.2f} ms  "
            f"min {self.low * 1e3:8.2f} ms  max {self.high * 1e3:8.2f} ms  (n={self.count})"
        )


def rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else math.inf


def ratio(a: float, b: float) -> float:
    return a / b if b else math.inf


# --- databases ---------------------------------------------------------------------------------------


@contextmanager
def temp_dir(prefix: str = "siyu-bench-") -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as name:
        yield Path(name)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def bench_settings() -> Settings:
    """The settings the server will also read (SIYU_ environment and .env), defaults otherwise."""
    return get_settings()


def migrated_engine(path: Path, settings: Settings | None = None) -> Engine:
    """A fresh SQLite file with the real schema, through the application's own engine factory."""
    from siyu.db import create_db_engine
    from siyu.migrations.runner import upgrade

    engine = create_db_engine(sqlite_url(path), settings or bench_settings())
    upgrade(engine)
    return engine


def create_workspace_and_key(engine: Engine, name: str = "bench") -> tuple[int, str]:
    """A workspace and an API key with the default integrator scopes; returns (workspace id, plaintext key)."""
    from siyu.auth.service import create_api_key
    from siyu.db import Database
    from siyu.workspaces.service import create_workspace

    with Database(engine).transaction() as session:
        workspace = create_workspace(session, name)
        _, plaintext = create_api_key(session, workspace_id=workspace.id, name="bench")
        return workspace.id, plaintext


def create_api_key_for(engine: Engine, workspace_id: int) -> str:
    from siyu.auth.service import create_api_key
    from siyu.db import Database

    with Database(engine).transaction() as session:
        _, plaintext = create_api_key(session, workspace_id=workspace_id, name="bench")
        return plaintext


def bare_connect(path: Path, settings: Settings | None = None) -> sqlite3.Connection:
    """A plain sqlite3 connection with the PRAGMAs siyu.db sets (WAL, busy_timeout, synchronous, foreign keys).

    Autocommit mode (isolation_level=None): the caller emits BEGIN IMMEDIATE / COMMIT like the app does.
    """
    settings = settings or bench_settings()
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA busy_timeout={int(settings.sqlite_busy_timeout_ms)}")
    conn.execute(f"PRAGMA synchronous={settings.sqlite_synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def explain(conn: sqlite3.Connection, sql: str, params: Sequence[object] = ()) -> list[str]:
    """EXPLAIN QUERY PLAN as indented lines."""
    rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", tuple(params)).fetchall()
    depth: dict[int, int] = {0: -1}
    lines = []
    for node_id, parent, _unused, detail in rows:
        depth[node_id] = depth.get(parent, -1) + 1
        lines.append("    " + "  " * depth[node_id] + str(detail))
    return lines


# --- the server --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@contextmanager
def running_server(
    database_path: Path,
    log_dir: Path,
    extra_env: dict[str, str] | None = None,
    workers: int = 1,
    with_worker: bool = False,
) -> Iterator[Server]:
    """`siyu serve` (uvicorn, `workers` processes) on 127.0.0.1 and a free port, on the given SQLite file.

    The child inherits the environment (so SIYU_ settings apply to both sides) with SIYU_DATABASE_URL set.
    It is stopped with SIGTERM, then SIGKILL if it does not exit.
    """
    port = free_port()
    env = {**os.environ, "SIYU_DATABASE_URL": sqlite_url(database_path), **(extra_env or {})}
    log_path = log_dir / f"server-{port}.log"
    command = [sys.executable, "-m", "siyu.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers)] + (["--with-worker"] if with_worker else [])
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = Server(base_url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    try:
        _wait_healthy(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def _wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    last_error = ""
    with httpx.Client(base_url=server.base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log_tail()}")
            try:
                response = client.get("/health")
                if response.status_code == 200:
                    return
                last_error = f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.TransportError as exc:
                last_error = repr(exc)
            time.sleep(0.1)
    raise RuntimeError(f"server not healthy after {SERVER_START_TIMEOUT_S:.0f}s ({last_error}):\n{server.log_tail()}")


# --- profiles ----------------------------------------------------------------------------------------


def profile_text(stats: pstats.Stats, sort: str, limit: int) -> str:
    """pstats output with long site-packages / source paths shortened."""
    stream = io.StringIO()
    stats.stream = stream  # type: ignore[attr-defined]
    stats.sort_stats(sort).print_stats(limit)
    text = stream.getvalue()
    for prefix in sorted({p for p in sys.path if p and p.startswith("/")}, key=len, reverse=True):
        text = text.replace(prefix.rstrip("/") + "/", "")
    lines = [line for line in text.splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    header = [line for line in lines[:start] if "function calls" in line]
    return "\n".join(["  " + line.strip() for line in header] + ["  " + line for line in lines[start:]])


def cpu_note() -> str:
    return f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}"
