"""The `siyu` command, run as a user runs it: a real process against the test database."""

from __future__ import annotations

import os
import subprocess
import sys

from fastapi.testclient import TestClient

from siyu.app import create_app


def siyu(database_url: str, *args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SIYU_DATABASE_URL": database_url, "SIYU_SQLITE_SYNCHRONOUS": "NORMAL"}
    env.pop("SIYU_STAFF_PASSWORD", None)
    if password:
        env["SIYU_STAFF_PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "-m", "siyu.cli", *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_set_up_a_workspace_from_the_command_line(db, database_url, settings) -> None:
    assert siyu(database_url, "migrate").returncode == 0
    created = siyu(database_url, "workspace", "create", "我的品牌")
    assert created.returncode == 0, created.stderr
    workspace_id = created.stdout.split()[1]
    listed = siyu(database_url, "workspace", "list")
    assert "我的品牌" in listed.stdout

    added = siyu(
        database_url,
        "staff",
        "add",
        "Boss@Brand.cn",
        "--name",
        "老板",
        "--workspace",
        workspace_id,
        "--role",
        "admin",
        password="a-long-password",
    )
    assert added.returncode == 0, added.stderr
    assert "boss@brand.cn (admin)" in added.stdout

    key_run = siyu(database_url, "apikey", "create", "--workspace", workspace_id, "--name", "shop")
    assert key_run.returncode == 0, key_run.stderr
    key = key_run.stdout.strip()
    assert key.startswith("siyu_key_") and "shown once" in key_run.stderr

    client = TestClient(create_app(settings=settings, database=db))
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {key}"}).json()
    assert me["workspace_id"] == int(workspace_id) and "staff:write" not in me["scopes"]
    session = client.post("/api/v1/auth/sessions", json={"email": "boss@brand.cn", "password": "a-long-password"})
    assert session.status_code == 201

    key_id = siyu(database_url, "apikey", "list", "--workspace", workspace_id).stdout
    assert "shop" in key_id and key not in key_id
    revoked = siyu(database_url, "apikey", "revoke", "1", "--workspace", workspace_id)
    assert revoked.returncode == 0, revoked.stderr
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_mistakes_exit_1_with_the_reason(db, database_url) -> None:
    missing = siyu(database_url, "apikey", "create", "--workspace", "999")
    assert missing.returncode == 1 and "workspace 999 does not exist" in missing.stderr
    short = siyu(database_url, "staff", "add", "a@b.cn", "--name", "x", "--workspace", "1", password="short")
    assert short.returncode == 1 and "password" in short.stderr
    scope = siyu(database_url, "apikey", "create", "--workspace", "1", "--scope", "everything")
    assert scope.returncode == 1 and "unknown scope" in scope.stderr


def test_serve_with_worker_stores_sent_events_and_stops_its_worker(tenant, db, database_url) -> None:
    """`make run`'s server: a batch answered 202 is stored by the child worker, which exits with serve."""
    import socket
    import time

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "SIYU_DATABASE_URL": database_url, "SIYU_SQLITE_SYNCHRONOUS": "NORMAL"}
    server = subprocess.Popen(
        [sys.executable, "-m", "siyu.cli", "serve", "--port", str(port), "--with-worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        headers = {"Authorization": f"Bearer {tenant.key}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "server did not come up"
                time.sleep(0.1)
            event = {"id": "cli-1", "type": "content.viewed", "contact": {"phone": "13900139000"}}
            sent = client.post("/api/v1/events", json={"events": [event]})
            assert sent.status_code == 202, sent.text
            batch_id = sent.json()["batch_id"]
            while (batch := client.get(f"/api/v1/events/batches/{batch_id}").json())["status"] == "pending":
                assert time.monotonic() < deadline + 30, "the worker did not store the batch"
                time.sleep(0.1)
            assert batch["status"] == "stored" and batch["accepted"] == 1 and batch["contacts_created"] == 1
        children = subprocess.run(
            ["pgrep", "-P", str(server.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        assert len(children) == 1, children  # the worker
    finally:
        server.terminate()
        server.wait(timeout=30)
    worker_pid = int(children[0])
    deadline = time.monotonic() + 30
    while _alive(worker_pid):
        assert time.monotonic() < deadline, "the worker outlived serve"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_verbose_worker_logs_where_each_pipeline_step_spent_its_time(tenant, db, database_url) -> None:  # type: ignore[no-untyped-def]
    event = {
        "id": "v1",
        "type": "content.viewed",
        "contact": {"phone": "13800000003"},
        "properties": {"content_id": "c"},
    }
    assert tenant.client.post("/api/v1/events", json={"events": [event]}).status_code == 202
    ran = siyu(database_url, "worker", "--once", "--verbose")
    assert ran.returncode == 0, ran.stderr
    step = [line for line in ran.stderr.splitlines() if "DEBUG siyu.usermodel" in line]
    assert step, ran.stderr
    assert f"workspace {tenant.workspace_id}: 1 events" in step[0] and "commit" in step[0] and "wait" in step[0]
    quiet = siyu(database_url, "worker", "--once")
    assert quiet.returncode == 0 and "DEBUG" not in quiet.stderr
