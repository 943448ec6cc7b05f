"""POST /api/v1/scripts/{id}/uses and GET .../stats: who used which answer, and conversion (order.paid
within 7 days after a use)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from scripts_helpers import add_script, contact_of, event, mount, send, set_status

from siyu.content.models import ContentStatus
from siyu.staff.models import Role


def test_uses_by_staff_and_answer_and_conversion(app, db, tenant, clock) -> None:  # type: ignore[no-untyped-def]
    mount(app)
    script = add_script(db, tenant.workspace_id, "价格", "多少钱", ["3980 元", "可分期"])
    send(
        tenant,
        event("message.received", "13900130001", "2026-11-23T09:00:00+08:00", text="多少钱"),
        event("message.received", "13900130002", "2026-11-23T09:00:00+08:00", text="多少钱"),
        event("message.received", "13900130003", "2026-11-23T09:00:00+08:00", text="多少钱"),
    )
    c1, c2, c3 = (contact_of(db, tenant.workspace_id, f"1390013000{i}") for i in (1, 2, 3))
    staff_id, consultant = tenant.as_staff("gu@brand.cn", Role.consultant, name="顾问小王")
    for contact in (c1, c2):
        assert tenant.client.patch(f"/api/v1/contacts/{contact}", json={"owner_id": staff_id}).status_code == 200
    # 2026-11-23 02:00 UTC: the consultant uses answer 1 with c1 and c2; the API key uses answer 0 with c3.
    assert (
        consultant.post(f"/api/v1/scripts/{script}/uses", json={"contact_id": c1, "answer_index": 1}).status_code == 201
    )
    assert (
        consultant.post(f"/api/v1/scripts/{script}/uses", json={"contact_id": c2, "answer_index": 1}).status_code == 201
    )
    use = tenant.client.post(f"/api/v1/scripts/{script}/uses", json={"contact_id": c3, "answer_index": 0})
    assert use.status_code == 201 and use.json()["staff_id"] is None and use.json()["api_key_id"] is not None
    assert tenant.client.post(f"/api/v1/scripts/{script}/uses", json={}).status_code == 201  # no contact
    # A consultant cannot record a use with someone else's contact, nor an answer that does not exist.
    assert consultant.post(f"/api/v1/scripts/{script}/uses", json={"contact_id": c3}).status_code == 404
    assert consultant.post(f"/api/v1/scripts/{script}/uses", json={"answer_index": 5}).status_code == 422
    # c1 pays 3 days later (converted), c2 paid before the use and 8 days after (not), c3 never.
    clock.advance(days=9)
    send(
        tenant,
        event("order.paid", "13900130001", "2026-11-26T10:00:00+08:00", order_id="o1", amount=3980),
        event("order.paid", "13900130002", "2026-11-20T10:00:00+08:00", order_id="o2", amount=100),
        event("order.paid", "13900130002", "2026-12-01T11:00:00+08:00", order_id="o3", amount=100),
    )
    stats = tenant.client.get(f"/api/v1/scripts/{script}/stats").json()
    assert stats["uses"] == 4 and stats["uses_by_answer"] == {"0": 2, "1": 2}
    assert {"staff_id": staff_id, "name": "顾问小王", "uses": 2} in stats["by_staff"]
    assert {"staff_id": None, "name": None, "uses": 2} in stats["by_staff"]
    assert (stats["contacts"], stats["converted"], stats["conversion_window_days"]) == (3, 1, 7)
    assert abs(stats["conversion_rate"] - 1 / 3) < 1e-9
    hit = tenant.client.get("/api/v1/scripts/search", params={"q": "多少钱"}).json()["items"][0]
    assert hit["uses"] == 4 and abs(hit["conversion_rate"] - 1 / 3) < 1e-9


def test_a_use_needs_a_published_script_of_the_workspace(app, db, make_tenant) -> None:  # type: ignore[no-untyped-def]
    mount(app)
    a, b = make_tenant("A"), make_tenant("B")
    script = add_script(db, a.workspace_id, "t", "q", ["a"])
    assert b.client.post(f"/api/v1/scripts/{script}/uses", json={}).status_code == 404
    set_status(db, script, ContentStatus.archived)
    assert a.client.post(f"/api/v1/scripts/{script}/uses", json={}).status_code == 422
    assert a.client.get("/api/v1/scripts/999999/stats").status_code == 404
