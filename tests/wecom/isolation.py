"""WeCom's part of tests/test_security.py: an app message of workspace B's, which A must never list."""

from __future__ import annotations

from typing import Any

from siyu.kit.time import utcnow
from siyu.staff.models import Staff
from siyu.wecom.models import AppMessageStatus, WeComAppMessage


def seed_b(client: Any, db: Any, ids: dict[str, Any]) -> dict[str, Any]:
    with db.transaction() as session:
        staff = session.get(Staff, ids["staff_id"])
        message = WeComAppMessage(
            workspace_id=staff.workspace_id,
            staff_id=staff.id,
            userid="ZZBuser",
            kind="task",
            dedupe_key="ZZB-task",
            title="ZZB新待办",
            description="ZZB",
            status=AppMessageStatus.sent,
            attempts=1,
            created_at=utcnow(),
        )
        session.add(message)
        session.flush()
        message_id = message.id
    listed = client.get("/api/v1/wecom/app-messages")
    assert listed.status_code == 200 and [m["id"] for m in listed.json()] == [message_id], listed.text
    return {"app_message_id": message_id}
