"""The content portrait on a known history, for everyone and within a segment."""

from __future__ import annotations

import datetime as dt

from content_helpers import BROWSER, make_contact, make_item, mount, push, send_events
from fastapi.testclient import TestClient

from siyu.kit.time import utcnow
from siyu.segments.models import Segment, SegmentMember


def _event(n: str, type: str, contact: int, at: dt.datetime, **properties: object) -> dict[str, object]:
    return {"id": n, "type": type, "contact": {"id": contact}, "timestamp": at.isoformat(), "properties": properties}


def test_portrait_numbers(tenant, anonymous, db, clock) -> None:
    mount(tenant.client.app)
    group = tenant.client.post("/api/v1/content/tag-groups", json={"name": "阶段"}).json()
    tag = tenant.client.post(f"/api/v1/content/tag-groups/{group['id']}/tags", json={"name": "新客"}).json()
    item = make_item(tenant, tag_ids=[tag["id"]])
    other = make_item(tenant)
    a, b, c = make_contact(tenant, "甲"), make_contact(tenant, "乙"), make_contact(tenant, "丙")
    links = {link["contact_id"]: link["token"] for link in push(tenant, item["id"], contact_ids=[a, b, c])["links"]}
    t0 = utcnow()
    anonymous.get(f"/r/{links[a]}", headers={"User-Agent": BROWSER}, follow_redirects=False)  # a views by link
    cid = str(item["id"])
    clock.advance(days=9)  # the events below happened since the view, and are now in the past
    send_events(
        tenant,
        [
            _event("v-b", "content.viewed", b, t0 + dt.timedelta(hours=1), content_id=cid, channel="moments"),
            _event("v-b2", "content.viewed", b, t0 + dt.timedelta(hours=2), content_id=cid),
            _event("f-c", "content.favorited", c, t0, content_id=cid),
            _event("s-b", "content.shared", b, t0, content_id=cid),
            _event("m-b", "content.commented", b, t0, content_id=cid, text="有用"),
            _event("v-other", "content.viewed", c, t0, content_id=str(other["id"])),
            _event("paid-a", "order.paid", a, t0 + dt.timedelta(days=3), order_id="o1", amount=99),
            _event("paid-b", "order.paid", b, t0 + dt.timedelta(days=8), order_id="o2", amount=99),
            _event("paid-c", "order.paid", c, t0 + dt.timedelta(days=1), order_id="o3", amount=99),
        ],
    )
    group_push = push(tenant, item["id"], group_id=5)
    stranger = TestClient(anonymous.app)  # no viewer cookie: an anonymous open of the group link
    stranger.get(f"/r/{group_push['links'][0]['token']}", headers={"User-Agent": BROWSER}, follow_redirects=False)

    portrait = tenant.client.get(f"/api/v1/content/{item['id']}/portrait").json()
    assert portrait["tags"] == [{"id": tag["id"], "group": "阶段", "name": "新客"}]
    assert {k: portrait[k] for k in portrait if k not in ("tags", "content_id")} == {
        "segment_id": None,
        "pushes": 2,
        "recipients": 3,
        "views": 4,  # a by link, b twice by events, one anonymous open of the group link
        "unique_viewers": 2,
        "anonymous_group_views": 1,
        "favorites": 1,
        "comments": 1,
        "shares": 1,
        "converted": 1,  # a paid 3 days after viewing; b 8 days after (too late); c never viewed
        "conversion_rate": 0.5,
        "open_rate": round(1 / 3, 4),  # of the three recipients only a opened their link
    }

    with db.transaction() as session:
        segment = Segment(workspace_id=tenant.workspace_id, name="乙丙", rule={"and": []}, member_count=2)
        session.add(segment)
        session.flush()
        for contact in (b, c):
            session.add(
                SegmentMember(
                    workspace_id=tenant.workspace_id, segment_id=segment.id, contact_id=contact, entered_at=t0
                )
            )
        segment_id = segment.id
    within = tenant.client.get(f"/api/v1/content/{item['id']}/portrait", params={"segment_id": segment_id}).json()
    assert within["segment_id"] == segment_id
    assert (within["views"], within["unique_viewers"], within["anonymous_group_views"]) == (2, 1, 0)
    assert (within["favorites"], within["comments"], within["shares"]) == (1, 1, 1)
    assert (within["converted"], within["conversion_rate"], within["recipients"], within["open_rate"]) == (
        0,
        0.0,
        2,
        0.0,
    )
    missing = tenant.client.get(f"/api/v1/content/{item['id']}/portrait", params={"segment_id": 999999})
    assert missing.status_code == 404
