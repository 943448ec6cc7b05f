"""/api/v1/journeys: create, edit, validate (422 with the JSON path), publish, activate, pause, archive,
templates, enrolments by hand and their list, one contact's journeys, taking someone out, scopes."""

from __future__ import annotations

from tests.journeys.journey_helpers import contact, journey, lift_budgets, phone, work

from siyu.auth.scopes import Scope
from siyu.staff.models import Role

SIMPLE = {"trigger": {"manual": True}, "steps": [{"id": "w", "type": "wait", "for": {"days": 1}}]}


def test_create_edit_publish_and_run_states(tenant) -> None:  # type: ignore[no-untyped-def]
    c = tenant.client
    created = c.post("/api/v1/journeys", json={"name": "SOP", "definition": SIMPLE})
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["status"], body["version"], body["published"]) == ("draft", None, False)
    journey_id = body["id"]
    assert c.post(f"/api/v1/journeys/{journey_id}/activate").status_code == 409  # nothing published yet
    assert c.post("/api/v1/journeys", json={"name": "SOP", "definition": SIMPLE}).status_code == 409
    first = c.post(f"/api/v1/journeys/{journey_id}/publish").json()
    assert first["version"] == 1
    assert c.post(f"/api/v1/journeys/{journey_id}/publish").json()["version"] == 1  # unchanged: same version
    assert c.get(f"/api/v1/journeys/{journey_id}").json()["published"] is True
    changed = {**SIMPLE, "entry": {"mode": "again_after_exit"}}
    edited = c.patch(f"/api/v1/journeys/{journey_id}", json={"definition": changed, "description": "每日"}).json()
    assert edited["published"] is False and edited["description"] == "每日"
    assert c.post(f"/api/v1/journeys/{journey_id}/publish").json()["version"] == 2
    assert c.get(f"/api/v1/journeys/{journey_id}/versions/1").json()["definition"] == SIMPLE
    assert c.get(f"/api/v1/journeys/{journey_id}/versions/3").status_code == 404
    assert c.post(f"/api/v1/journeys/{journey_id}/pause").status_code == 409  # not active
    assert c.post(f"/api/v1/journeys/{journey_id}/activate").json()["status"] == "active"
    assert c.post(f"/api/v1/journeys/{journey_id}/pause").json()["status"] == "paused"
    assert [j["id"] for j in c.get("/api/v1/journeys", params={"status": "paused"}).json()] == [journey_id]
    assert c.post(f"/api/v1/journeys/{journey_id}/archive").json()["status"] == "archived"
    assert c.post(f"/api/v1/journeys/{journey_id}/activate").status_code == 409
    assert c.patch(f"/api/v1/journeys/{journey_id}", json={"name": "x"}).status_code == 409


def test_a_bad_definition_is_refused_with_its_json_path(tenant) -> None:  # type: ignore[no-untyped-def]
    bad = {"trigger": {"manual": True}, "steps": [{"id": "a", "type": "send", "text": "x", "next": "nowhere"}]}
    response = tenant.client.post("/api/v1/journeys", json={"name": "坏", "definition": bad})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_journey"
    assert error["details"] == [{"path": "$.steps[0].next", "reason": "no step 'nowhere' in this journey (steps: a)"}]
    checked = tenant.client.post("/api/v1/journeys/validate", json={"definition": bad})
    assert checked.status_code == 422 and checked.json()["error"]["details"][0]["path"] == "$.steps[0].next"
    good = tenant.client.post("/api/v1/journeys/validate", json={"definition": SIMPLE}).json()
    assert good == {"valid": True, "trigger": "manual", "steps": ["w"]}


def test_templates_list_and_instantiate(tenant) -> None:  # type: ignore[no-untyped-def]
    templates = tenant.client.get("/api/v1/journeys/templates").json()
    keys = {t["key"] for t in templates}
    assert keys == {"onboarding", "training_camp", "festival", "birthday", "repurchase", "winback", "live_reminders"}
    made = tenant.client.post(
        "/api/v1/journeys/from-template", json={"template": "winback", "name": "挽回", "channel": "wecom"}
    )
    assert made.status_code == 201, made.text
    draft = made.json()["draft"]
    assert draft["steps"][0]["type"] == "holdout"
    assert {s.get("channel") for s in draft["steps"] if s["type"] == "send"} == {"wecom"}
    unknown = tenant.client.post("/api/v1/journeys/from-template", json={"template": "nope", "name": "x"})
    assert unknown.status_code == 422 and "template" in unknown.text


def test_enrolments_by_hand_listed_filtered_paged_and_taken_out(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    lift_budgets(tenant)
    c = tenant.client
    people = [contact(tenant, f"客户{n}", phone(n)) for n in range(5)]
    journey_id = journey(tenant, SIMPLE)
    result = c.post(f"/api/v1/journeys/{journey_id}/enrolments", json={"contact_ids": [*people, 999999]})
    assert result.status_code == 422 and "999999" in result.text
    result = c.post(f"/api/v1/journeys/{journey_id}/enrolments", json={"contact_ids": people}).json()
    assert len(result["enrolled"]) == 5 and result["refused"] == []
    work(db)
    page = c.get(f"/api/v1/journeys/{journey_id}/enrolments", params={"limit": 2, "status": "active"}).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = c.get(
        f"/api/v1/journeys/{journey_id}/enrolments", params={"limit": 10, "cursor": page["next_cursor"]}
    ).json()
    assert len(rest["items"]) == 3 and rest["next_cursor"] is None
    at_w = c.get(f"/api/v1/journeys/{journey_id}/enrolments", params={"step": "w"}).json()["items"]
    assert len(at_w) == 5 and all(e["waiting"] for e in at_w)
    one = at_w[0]
    out = c.post(f"/api/v1/journeys/{journey_id}/enrolments/{one['id']}/exit")
    assert out.status_code == 200 and (out.json()["status"], out.json()["exit_reason"]) == ("exited", "removed")
    assert c.post(f"/api/v1/journeys/{journey_id}/enrolments/{one['id']}/exit").status_code == 409
    mine = c.get(f"/api/v1/journeys/contacts/{one['contact_id']}").json()
    assert [(e["journey_id"], e["status"], e["journey_name"]) for e in mine] == [(journey_id, "exited", "旅程")]
    numbers = c.get(f"/api/v1/journeys/{journey_id}/numbers").json()
    assert numbers["steps"][0]["waiting"] == 4 and numbers["steps"][0]["exited"] == 1


def test_consultants_read_only_their_own_contacts(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    lift_budgets(tenant)
    staff_id, consultant = tenant.as_staff("c@a.cn", role=Role.consultant)
    mine = contact(tenant, "我的", phone(1), owner_id=staff_id)
    theirs = contact(tenant, "别人的", phone(2))
    journey_id = journey(tenant, SIMPLE)
    tenant.client.post(f"/api/v1/journeys/{journey_id}/enrolments", json={"contact_ids": [mine, theirs]})
    listed = consultant.get(f"/api/v1/journeys/{journey_id}/enrolments").json()["items"]
    assert [e["contact_id"] for e in listed] == [mine]
    assert consultant.get(f"/api/v1/journeys/contacts/{theirs}").status_code == 404
    assert consultant.post(f"/api/v1/journeys/{journey_id}/pause").status_code == 403  # no journeys:write


def test_scopes(make_tenant) -> None:  # type: ignore[no-untyped-def]
    reader = make_tenant("只读", scopes=frozenset({Scope.journeys_read}))
    assert reader.client.get("/api/v1/journeys").status_code == 200
    denied = reader.client.post("/api/v1/journeys", json={"name": "x", "definition": SIMPLE})
    assert denied.status_code == 403 and "journeys:write" in denied.text
