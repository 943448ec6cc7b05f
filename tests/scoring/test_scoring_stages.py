"""Transaction stages: moved by events (with a property condition read from the raw events) or by
segment membership; the furthest stage reached wins."""

from __future__ import annotations

import pytest
from scoring_helpers import contact_id, event, mount_scoring, reasons, row, score, send
from sqlalchemy import delete

from siyu.segments.models import Segment, SegmentMember


@pytest.fixture(autouse=True)
def _scoring_routes(app) -> None:  # type: ignore[no-untyped-def]
    mount_scoring(app)


def _segment(db, workspace_id: int, name: str, members: list[int], at) -> int:  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        segment = Segment(workspace_id=workspace_id, name=name, rule={"and": []})
        session.add(segment)
        session.flush()
        for member in members:
            session.add(
                SegmentMember(workspace_id=workspace_id, segment_id=segment.id, contact_id=member, entered_at=at)
            )
        return segment.id


def _stages(segment_id: int) -> list[dict[str, object]]:
    return [
        {"key": "registered", "label": "已报名", "moved_by": [{"event_type": "course.registered"}]},
        {"key": "studying", "label": "学习中", "moved_by": [{"segment_id": segment_id}]},
        {
            "key": "examined",
            "label": "已考试",
            "moved_by": [
                {"event_type": "exam.taken", "property": "passed", "equals": True},
                {"event_type": "exam.taken", "property": "score", "equals": 100},
            ],
        },
        {"key": "certified", "label": "已拿证", "moved_by": [{"event_type": "cert.issued"}]},
    ]


def test_stages_by_event_property_and_segment(tenant, db, clock) -> None:
    ws = tenant.workspace_id
    now = clock.now
    send(
        db,
        ws,
        [
            event(1, "course.registered", now),
            event(2, "course.registered", now),
            event(3, "exam.taken", now, passed=1),  # JSON 1 is not true
            event(4, "exam.taken", now, passed=True),
            event(5, "course.registered", now),
            event(5, "cert.issued", now),
            event(6, "exam.taken", now, passed=False, score=100),
        ],
    )
    ids = {n: contact_id(db, ws, n) for n in range(1, 7)}
    segment_id = _segment(db, ws, "在读学员", [ids[2]], now)
    put = tenant.client.put("/api/v1/scoring/settings", json={"transaction_stages": _stages(segment_id)})
    assert put.status_code == 200, put.text
    score(db, ws, now)
    stages = {n: row(db, c).transaction_stage for n, c in ids.items()}
    assert stages == {1: "registered", 2: "studying", 3: None, 4: "examined", 5: "certified", 6: "examined"}
    assert reasons(db, ws, ids[1])["transaction_stage"] == [
        "stage 已报名 (registered): course.registered on 2026-11-23"
    ]
    assert reasons(db, ws, ids[2])["transaction_stage"] == [
        "stage 学习中 (studying): in segment '在读学员' on 2026-11-23"
    ]
    assert reasons(db, ws, ids[3])["transaction_stage"] == [
        "no stage reached: the first, '已报名', is reached by course.registered"
    ]
    assert reasons(db, ws, ids[4])["transaction_stage"] == [
        "stage 已考试 (examined): exam.taken with passed = true on 2026-11-23"
    ]
    assert reasons(db, ws, ids[6])["transaction_stage"] == [
        "stage 已考试 (examined): exam.taken with score = 100 on 2026-11-23"
    ]

    # An incremental run moves one contact; leaving the segment moves the other back.
    send(db, ws, [event(3, "course.registered", now)])
    score(db, ws, now, [ids[3]])
    assert row(db, ids[3]).transaction_stage == "registered"
    with db.transaction() as session:
        session.execute(delete(SegmentMember).where(SegmentMember.segment_id == segment_id))
    score(db, ws, now, [ids[2]])
    assert row(db, ids[2]).transaction_stage == "registered"


def test_a_segment_of_another_workspace_is_refused_with_its_path(tenant, make_tenant, db, clock) -> None:
    other = make_tenant("B")
    foreign = _segment(db, other.workspace_id, "B的分群", [], clock.now)
    response = tenant.client.put("/api/v1/scoring/settings", json={"transaction_stages": _stages(foreign)})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["details"] == [
        {"field": "transaction_stages[1].moved_by[0].segment_id", "reason": f"segment {foreign} not found"}
    ]
    assert "transaction_stages[1].moved_by[0].segment_id" in error["message"]
