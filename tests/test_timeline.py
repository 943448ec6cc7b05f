"""The timeline reads as one story, newest first, and pages through it without gaps or repeats."""

from __future__ import annotations


def test_timeline_pages_through_every_entry_once_even_at_equal_times(tenant, clock) -> None:
    c = tenant.client
    group = c.post("/api/v1/tag-groups", json={"name": "兴趣"}).json()
    tags = [c.post("/api/v1/tags", json={"group_id": group["id"], "name": f"t{i}"}).json()["id"] for i in range(3)]
    contact = c.post("/api/v1/contacts", json={"identities": [{"type": "phone", "value": "13500135000"}]}).json()
    cid = contact["id"]
    expected = set()
    for step in range(4):
        # The clock stands still within a step: notes, tag changes and events share one instant.
        for n in range(2):
            note = c.post(f"/api/v1/contacts/{cid}/notes", json={"body": f"step {step} note {n}"}).json()
            expected.add(("note", note["id"]))
        c.post(f"/api/v1/contacts/{cid}/tags", json={"add": [tags[step % 3]]})
        c.post(f"/api/v1/contacts/{cid}/tags", json={"remove": [tags[step % 3]]})
        c.post(
            "/api/v1/events?wait=true",
            json={
                "events": [
                    {
                        "id": f"s{step}e{n}",
                        "type": "content.viewed",
                        "contact": {"id": cid},
                        "timestamp": clock.now.isoformat(),
                        "properties": {"content_id": f"c{n}"},
                    }
                    for n in range(3)
                ]
            },
        )
        clock.advance(minutes=1)
    history = c.get(f"/api/v1/contacts/{cid}/tag-history").json()
    expected |= {("tag_change", h["id"]) for h in history}
    expected |= {("event", e["seq"]) for e in c.get("/api/v1/events", params={"contact_id": cid}).json()}
    assert len(expected) == 4 * 2 + 4 * 2 + 4 * 3

    seen: list[tuple[str, int]] = []
    times: list[str] = []
    cursor = None
    while True:
        params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        page = c.get(f"/api/v1/contacts/{cid}/timeline", params=params).json()
        for entry in page["items"]:
            key = entry["data"]["seq"] if entry["kind"] == "event" else entry["id"]
            seen.append((entry["kind"], key))
            times.append(entry["at"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == len(expected)
    assert set(seen) == expected
    assert times == sorted(times, reverse=True)
