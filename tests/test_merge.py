"""Merging profiles: by hand and from events, with property-based checks of identity resolution."""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from siyu.contacts.models import Contact, Identity
from siyu.events import service
from siyu.events.models import Event
from siyu.workspaces.service import create_workspace


def test_merge_by_hand_keeps_the_survivors_exclusive_tag_and_flattens_chains(tenant) -> None:
    c = tenant.client
    level = c.post("/api/v1/tag-groups", json={"name": "意向", "exclusive": True}).json()
    strong = c.post("/api/v1/tags", json={"group_id": level["id"], "name": "强"}).json()
    weak = c.post("/api/v1/tags", json={"group_id": level["id"], "name": "弱"}).json()
    first = c.post(
        "/api/v1/contacts", json={"name": "一号", "identities": [{"type": "email", "value": "1@x.cn"}]}
    ).json()
    second = c.post(
        "/api/v1/contacts", json={"occupation": "教师", "identities": [{"type": "email", "value": "2@x.cn"}]}
    ).json()
    third = c.post("/api/v1/contacts", json={"identities": [{"type": "email", "value": "3@x.cn"}]}).json()
    c.post(f"/api/v1/contacts/{first['id']}/tags", json={"add": [strong["id"]]})
    c.post(f"/api/v1/contacts/{second['id']}/tags", json={"add": [weak["id"]]})

    # third into second, then second into first: third must now resolve straight to first.
    assert c.post(f"/api/v1/contacts/{second['id']}/merge", json={"other_contact_id": third["id"]}).status_code == 200
    merged = c.post(
        f"/api/v1/contacts/{first['id']}/merge", json={"other_contact_id": second["id"], "reason": "同一人"}
    )
    assert merged.status_code == 200
    assert merged.json()["details"]["moved"]["identities"] == 2
    survivor = c.get(f"/api/v1/contacts/{third['id']}").json()
    assert survivor["id"] == first["id"]
    assert survivor["occupation"] == "教师"
    assert [t["name"] for t in survivor["tags"]] == ["强"]  # the survivor's exclusive tag wins
    assert sorted(i["value"] for i in survivor["identities"]) == ["1@x.cn", "2@x.cn", "3@x.cn"]
    assert c.post(f"/api/v1/contacts/{first['id']}/merge", json={"other_contact_id": third["id"]}).status_code == 422


def test_consultant_cannot_merge_someone_elses_contact(tenant) -> None:
    staff_id, consultant = tenant.as_staff("c@brand.cn")
    mine = tenant.client.post("/api/v1/contacts", json={"owner_id": staff_id}).json()
    other = tenant.client.post("/api/v1/contacts", json={}).json()
    refused = consultant.post(f"/api/v1/contacts/{mine['id']}/merge", json={"other_contact_id": other["id"]})
    assert refused.status_code == 404


IDENTITIES = [("phone", f"1380013800{i}") for i in range(4)] + [("wecom_external_userid", f"wm{i}") for i in range(4)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=st.lists(
        st.lists(st.lists(st.sampled_from(IDENTITIES), min_size=1, max_size=3, unique=True), min_size=1, max_size=6),
        min_size=1,
        max_size=4,
    )
)
def test_people_are_the_connected_components_of_their_identities(db, batches) -> None:
    """However events arrive, every identity ends on one live contact, and two identities share a
    contact exactly when some chain of events linked them; no event is lost."""
    with db.transaction() as session:
        workspace_id = create_workspace(session, "hypothesis").id
    counter = 0
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(x: tuple[str, str]) -> tuple[str, str]:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for batch in batches:
        events = []
        for identities in batch:
            counter += 1
            contact = dict(identities)  # one value per type in an event, as integrators send it
            sent = list(contact.items())
            events.append({"id": f"e{counter}", "type": "form.submitted", "contact": contact, "properties": {}})
            for other in sent:
                parent[find(other)] = find(sent[0])
        parsed = service.parse_batch(orjson.dumps({"events": events}), max_events=1000)
        with db.transaction() as session:
            service.ingest(session, workspace_id, parsed, region="CN")

    with db.transaction(write=False) as session:
        owner = {
            (t, v): cid
            for t, v, cid in session.execute(
                select(Identity.type, Identity.value, Identity.contact_id).where(Identity.workspace_id == workspace_id)
            )
        }
        live = set(
            session.scalars(
                select(Contact.id).where(Contact.workspace_id == workspace_id, Contact.merged_into_id.is_(None))
            )
        )
        stored = session.scalar(
            select(func.count())
            .select_from(Event)
            .where(Event.workspace_id == workspace_id, Event.type == "form.submitted")
        )
        assert set(owner.values()) <= live
        assert len(live) == len(set(owner.values()))
    normalised = {ident: ("phone", "+86" + ident[1]) if ident[0] == "phone" else ident for ident in parent}
    seen = list(parent)
    for a in seen:
        for b in seen:
            same_person = find(a) == find(b)
            assert (owner[normalised[a]] == owner[normalised[b]]) == same_person
    assert stored == counter
