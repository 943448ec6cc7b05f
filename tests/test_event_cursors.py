"""siyu.events.cursors: what every consumer of the event stream relies on (groups, opt-outs, unanswered
messages, journeys, the user model): each event of its types read once, in order, across steps cut at
their limit; events of other types passed over; the cursor moved only by a step that commits."""

from __future__ import annotations

import datetime as dt
from typing import Any

from siyu.events import cursors
from siyu.kit.time import utcnow

NAME = "test.cursor"


def _event(n: int, kind: str) -> dict[str, Any]:
    at = (utcnow() - dt.timedelta(minutes=30) + dt.timedelta(seconds=n)).isoformat()
    return {"id": f"e{n}", "type": kind, "contact": {"phone": f"+86138000{n:05d}"}, "timestamp": at}


def _send(tenant: Any, events: list[dict[str, Any]]) -> None:
    response = tenant.client.post("/api/v1/events?wait=true", json={"events": events})
    assert response.status_code in (200, 201), response.text


def _read_all(db: Any, workspace_id: int, types: tuple[str, ...], limit: int) -> list[list[int]]:
    """The sequence numbers read, step by step, until there is nothing to read; each step commits."""
    steps: list[list[int]] = []
    while True:
        with db.transaction() as session:
            read = cursors.read_next(session, NAME, workspace_id, types, limit)
            if read is None:
                return steps
            steps.append([row[4] for row in read.rows])
            read.advance()


def test_each_event_of_its_types_is_read_once_in_order_across_cut_steps(tenant, db) -> None:  # type: ignore[no-untyped-def]
    kinds = ["content.viewed", "message.received", "content.viewed", "order.paid", "content.viewed"] * 3
    _send(tenant, [_event(n, kind) for n, kind in enumerate(kinds)])
    with db.transaction(write=False) as session:
        assert cursors.workspaces_behind(session, NAME) == [tenant.workspace_id]

    steps = _read_all(db, tenant.workspace_id, ("content.viewed",), limit=4)

    assert [len(s) for s in steps] == [4, 4, 1]
    # one batch is numbered in its order from 1: the views are events 0, 2, 4 of each five
    assert [seq for step in steps for seq in step] == [
        n + 1 for n, kind in enumerate(kinds) if kind == "content.viewed"
    ]
    with db.transaction(write=False) as session:
        assert cursors.workspaces_behind(session, NAME) == []  # the last step moved the cursor to the head


def test_a_step_of_other_types_only_moves_the_cursor_to_the_head(tenant, db) -> None:  # type: ignore[no-untyped-def]
    _send(tenant, [_event(n, "message.sent") for n in range(5)])

    steps = _read_all(db, tenant.workspace_id, ("content.viewed",), limit=100)

    assert steps == [[]]  # one step read nothing of its types, yet moved: the next is up to date
    with db.transaction() as session:
        cursor = cursors.lock(session, NAME, tenant.workspace_id)
        assert cursor is not None and cursor.seq == 5


def test_a_step_that_does_not_commit_leaves_the_cursor(tenant, db) -> None:  # type: ignore[no-untyped-def]
    _send(tenant, [_event(n, "content.viewed") for n in range(3)])
    try:
        with db.transaction() as session:
            read = cursors.read_next(session, NAME, tenant.workspace_id, ("content.viewed",), 10)
            assert read is not None and len(read.rows) == 3
            read.advance()
            session.flush()
            raise RuntimeError("the step failed before its commit")
    except RuntimeError:
        pass

    assert [len(s) for s in _read_all(db, tenant.workspace_id, ("content.viewed",), limit=10)] == [3]


def test_a_new_cursor_starts_where_it_is_told(tenant, db) -> None:  # type: ignore[no-untyped-def]
    _send(tenant, [_event(n, "content.viewed") for n in range(4)])
    with db.transaction() as session:
        cursor = cursors.lock(session, NAME, tenant.workspace_id, start=4)
        assert cursor is not None and cursor.seq == 4
    with db.transaction() as session:
        assert cursors.read_next(session, NAME, tenant.workspace_id, ("content.viewed",), 10) is None


def test_run_behind_steps_each_workspace_until_nothing_is_read(make_tenant, db) -> None:  # type: ignore[no-untyped-def]
    first, second, idle = make_tenant("甲"), make_tenant("乙"), make_tenant("丙")
    _send(first, [_event(n, "content.viewed") for n in range(5)])
    _send(second, [_event(n, "content.viewed") for n in range(2)])
    seen: dict[int, int] = {}

    def step(session, workspace_id: int) -> int:  # type: ignore[no-untyped-def]
        read = cursors.read_next(session, NAME, workspace_id, ("content.viewed",), 2)
        if read is None:
            return 0
        seen[workspace_id] = seen.get(workspace_id, 0) + len(read.rows)
        return read.advance()

    assert cursors.run_behind(db, NAME, step) == 7
    assert seen == {first.workspace_id: 5, second.workspace_id: 2}
    assert idle.workspace_id not in seen
    assert cursors.run_behind(db, NAME, step) == 0
