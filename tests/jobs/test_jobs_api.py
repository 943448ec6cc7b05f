"""GET /api/v1/jobs shows a workspace its own jobs: what waits, what failed and why."""

from __future__ import annotations

from siyu.auth.scopes import Scope
from siyu.jobs import enqueue


def test_jobs_are_listed_per_workspace_with_their_state(make_tenant, db) -> None:
    a, b = make_tenant("A"), make_tenant("B")
    with db.transaction() as session:
        mine = [enqueue(session, "jobs.cleanup", {"n": n}, workspace_id=a.workspace_id) for n in range(3)]
        theirs = enqueue(session, "jobs.cleanup", {"n": 9}, workspace_id=b.workspace_id)
        assert all(mine) and theirs is not None
        mine_ids = [j.id for j in mine if j is not None]
        theirs_id = theirs.id
    page = a.client.get("/api/v1/jobs", params={"limit": 2}).json()
    assert [j["id"] for j in page["items"]] == sorted(mine_ids, reverse=True)[:2]
    rest = a.client.get("/api/v1/jobs", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [j["id"] for j in rest["items"]] == [min(mine_ids)] and rest["next_cursor"] is None
    assert a.client.get("/api/v1/jobs", params={"status": "failed"}).json()["items"] == []
    assert a.client.get(f"/api/v1/jobs/{mine_ids[0]}").json()["status"] == "queued"
    assert a.client.get(f"/api/v1/jobs/{theirs_id}").status_code == 404


def test_reading_jobs_needs_its_scope(make_tenant) -> None:
    narrow = make_tenant("C", scopes=frozenset({Scope.contacts_read}))
    denied = narrow.client.get("/api/v1/jobs")
    assert denied.status_code == 403 and "jobs:read" in denied.json()["error"]["message"]
