"""Every route is authenticated unless listed public, and no key of workspace A reads or changes B.

The test walks the OpenAPI description, so a new route is covered the day it is added: it must get a
request body below (REQUEST_BODIES) or the walk fails and says so.

A later domain keeps its part beside its own tests, in `tests/<domain>/isolation.py` (found by name):
`seed_b(client, db, ids) -> dict` adds B's objects of that domain and returns their ids, and optional
`request_bodies(ids)`, `PATH_ID_ALIASES` and `REFERENCES_B` extend the tables below.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import select

from siyu.channels.attribution import record_add
from siyu.db import Base
from siyu.jobs import enqueue
from siyu.kit.time import utcnow

PUBLIC = {("POST", "/api/v1/auth/sessions"), ("GET", "/health")}
MARK = "ZZB"  # every name in workspace B carries it; it must never show up in A's answers


def _routes(app) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    routes = []
    for path, item in app.openapi()["paths"].items():
        for method in item:
            if method.upper() in {"GET", "POST", "PATCH", "PUT", "DELETE"}:
                routes.append((method.upper(), path))
    return sorted(routes)


def _domain_parts() -> list[ModuleType]:
    here = Path(__file__).parent
    return [importlib.import_module(f"tests.{p.parent.name}.isolation") for p in sorted(here.glob("*/isolation.py"))]


DOMAIN_PARTS = _domain_parts()


def _seed_b(b, db) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    ids = _seed_core_b(b, db)
    for part in DOMAIN_PARTS:
        ids.update(part.seed_b(b.client, db, ids))
    return ids


def _seed_core_b(b, db) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    c = b.client
    with db.transaction() as session:
        job = enqueue(session, "jobs.cleanup", {"note": MARK}, workspace_id=b.workspace_id)
        assert job is not None
        job_id = job.id
    staff_id, _ = b.as_staff(f"{MARK.lower()}@b.cn", name=f"{MARK}顾问")
    group = c.post("/api/v1/tag-groups", json={"name": f"{MARK}组"}).json()
    tag = c.post("/api/v1/tags", json={"group_id": group["id"], "name": f"{MARK}标签"}).json()
    c.post("/api/v1/attributes", json={"key": "zzb_attr", "label": f"{MARK}属性", "type": "text"})
    contact = c.post(
        "/api/v1/contacts",
        json={"name": f"{MARK}客户", "owner_id": staff_id, "identities": [{"type": "phone", "value": "13600136000"}]},
    ).json()
    other = c.post("/api/v1/contacts", json={"name": f"{MARK}另一个"}).json()
    c.post(f"/api/v1/contacts/{contact['id']}/tags", json={"add": [tag["id"]]})
    c.post(f"/api/v1/contacts/{contact['id']}/notes", json={"body": f"{MARK}备注"})
    batch = c.post(
        "/api/v1/events?wait=true",
        json={
            "events": [
                {
                    "id": "b1",
                    "type": "content.viewed",
                    "contact": {"phone": "13600136000"},
                    "properties": {"content_id": MARK},
                }
            ]
        },
    ).json()
    key = c.post("/api/v1/api-keys", json={"name": f"{MARK}key"}).json()
    sheet = f"姓名,手机\r\n{MARK}导入,13500135000\r\n坏行,123\r\n".encode()
    imported = c.post(
        "/api/v1/imports/contacts", files={"file": ("b.csv", sheet)}, data={"skip_bad_rows": "true"}
    ).json()
    channel = c.post(
        "/api/v1/channels",
        json={
            "kind": "douyin",
            "name": f"{MARK}渠道",
            "costs": [{"period_start": "2026-11-01", "period_end": "2026-11-30", "amount": "300"}],
        },
    ).json()
    code = c.post(
        "/api/v1/channel-codes",
        json={
            "channel_id": channel["id"],
            "name": f"{MARK}活码",
            "pool": [{"staff_id": staff_id, "daily_cap": 5}],
            "tag_ids": [tag["id"]],
            "welcome_text": f"{MARK}欢迎",
        },
    ).json()
    with db.transaction() as session:
        record_add(session, b.workspace_id, code["id"], {"phone": "13700137000"}, occurred_at=utcnow())
    wecom = c.put("/api/v1/wecom/config", json={**WECOM_CONFIG, "corp_id": f"{MARK}corp"})
    assert wecom.status_code == 200, wecom.text
    smart_tag = c.post(
        "/api/v1/smart-tags",
        json={"name": f"{MARK}智能标签", "tag_id": tag["id"], "kind": "keywords", "keywords": [f"{MARK}词", "多少钱"]},
    ).json()
    group = c.post("/api/v1/groups", json={"name": f"{MARK}群", "purpose": "broadcast"}).json()
    group_code = c.post(
        "/api/v1/group-codes",
        json={
            "name": f"{MARK}码",
            "group_ids": [group["id"]],
            "template": {"name_pattern": f"{MARK} {{n}} 群", "purpose": "welfare"},
        },
    ).json()
    item = c.post(
        "/api/v1/content", json={"kind": "article", "title": MARK, "body": MARK, "status": "published"}
    ).json()
    content_group = c.post("/api/v1/content/tag-groups", json={"name": f"{MARK}主题"}).json()
    content_tag = c.post(f"/api/v1/content/tag-groups/{content_group['id']}/tags", json={"name": f"{MARK}考试"}).json()
    push = c.post(f"/api/v1/content/{item['id']}/pushes", json={"contact_ids": [contact["id"]]}).json()
    script = c.post(
        "/api/v1/content",
        json={
            "kind": "script",
            "title": f"{MARK}价格",
            "data": {"question": f"{MARK}多少钱", "answers": [f"{MARK} 3980 元"]},
            "status": "published",
        },
    ).json()
    segment = c.post(
        "/api/v1/segments", json={"name": f"{MARK}分群", "rule": {"tags": [tag["id"]], "match": "any"}}
    ).json()
    return {
        "channel_id": channel["id"],
        "code_id": code["id"],
        "contact_id": contact["id"],
        "other_contact_id": other["id"],
        "group_id": group["id"],
        "tag_id": tag["id"],
        "staff_id": staff_id,
        "key_id": key["id"],
        "job_id": job_id,
        "import_id": imported["id"],
        "segment_id": segment["id"],
        "group_id_chat": group["id"],
        "content_id": item["id"],
        "script_id": script["id"],
        "push_id": push["id"],
        "content_group_id": content_group["id"],
        "content_tag_id": content_tag["id"],
        "group_code_id": group_code["id"],
        "smart_tag_id": smart_tag["id"],
        "batch_id": batch["batch_id"],
        "identity_type": "phone",
        "value": "+8613600136000",
    }


WECOM_CONFIG = {"corp_id": "wwA", "secret": "a-secret-value", "token": "tok", "encoding_aes_key": "a" * 43}


def REQUEST_BODIES(b: dict[str, Any]) -> dict[tuple[str, str], Any]:
    bodies = _core_request_bodies(b)
    for part in DOMAIN_PARTS:
        if hasattr(part, "request_bodies"):
            bodies.update(part.request_bodies(b))
    return bodies


def _core_request_bodies(b: dict[str, Any]) -> dict[tuple[str, str], Any]:
    return {
        ("POST", "/api/v1/auth/sessions"): {"email": f"{MARK.lower()}@b.cn", "password": "wrong password"},
        ("POST", "/api/v1/staff"): {"email": "new@a.cn", "name": "n", "role": "operator", "password": "12345678"},
        ("PATCH", "/api/v1/staff/{staff_id}"): {"name": "hijacked", "is_active": False},
        ("POST", "/api/v1/api-keys"): {"name": "k"},
        ("POST", "/api/v1/contacts"): {"name": "a", "owner_id": b["staff_id"]},
        ("PATCH", "/api/v1/contacts/{contact_id}"): {"name": "hijacked"},
        ("POST", "/api/v1/contacts/{contact_id}/identities"): {"type": "email", "value": "hijack@a.cn"},
        ("POST", "/api/v1/contacts/{contact_id}/merge"): {"other_contact_id": b["other_contact_id"]},
        ("POST", "/api/v1/contacts/{contact_id}/notes"): {"body": "hijacked"},
        ("POST", "/api/v1/contacts/{contact_id}/tags"): {"add": [b["tag_id"]]},
        ("POST", "/api/v1/contacts/bulk/tags"): {"add": [b["tag_id"]], "selection": {"contact_ids": [b["contact_id"]]}},
        ("POST", "/api/v1/contacts/bulk/owner"): {
            "selection": {"contact_ids": [b["contact_id"]]},
            "owner_id": b["staff_id"],
        },
        ("POST", "/api/v1/tags/{tag_id}/merge"): {"into_tag_id": b["tag_id"]},
        ("POST", "/api/v1/attributes"): {"key": "zzb_attr", "label": "x", "type": "number"},
        ("POST", "/api/v1/tag-groups"): {"name": "A组"},
        ("PATCH", "/api/v1/tag-groups/{group_id}"): {"name": "hijacked"},
        ("POST", "/api/v1/tags"): {"group_id": b["group_id"], "name": "x"},
        ("PATCH", "/api/v1/tags/{tag_id}"): {"name": "hijacked"},
        ("POST", "/api/v1/channels"): {"kind": "custom", "name": "A渠道"},
        ("PATCH", "/api/v1/channels/{channel_id}"): {"name": "hijacked", "costs": []},
        ("POST", "/api/v1/channel-codes"): {
            "channel_id": b["channel_id"],
            "name": "hijack",
            "pool": [{"staff_id": b["staff_id"]}],
            "tag_ids": [b["tag_id"]],
        },
        ("PATCH", "/api/v1/channel-codes/{code_id}"): {"name": "hijacked", "pool": [{"staff_id": b["staff_id"]}]},
        ("PUT", "/api/v1/wecom/config"): WECOM_CONFIG,
        ("PUT", "/api/v1/scoring/settings"): {
            "transaction_stages": [{"key": "s", "label": "S", "moved_by": [{"segment_id": b["segment_id"]}]}]
        },
        ("POST", "/api/v1/groups"): {"name": "A群", "purpose": "broadcast"},
        ("PATCH", "/api/v1/groups/{group_id}"): {"name": "hijacked"},
        ("POST", "/api/v1/group-codes"): {"name": "A码", "group_ids": [b["group_id_chat"]]},
        ("PATCH", "/api/v1/group-codes/{code_id}"): {"name": "hijacked"},
        ("POST", "/api/v1/content"): {"kind": "article", "title": "A文章", "tag_ids": [b["content_tag_id"]]},
        ("PATCH", "/api/v1/content/{content_id}"): {"title": "hijacked"},
        ("POST", "/api/v1/content/tag-groups"): {"name": "A主题"},
        ("POST", "/api/v1/content/tag-groups/{group_id}/tags"): {"name": "hijacked"},
        ("POST", "/api/v1/content/{content_id}/pushes"): {"contact_ids": [b["contact_id"]]},
        ("POST", "/api/v1/scripts/{script_id}/uses"): {"answer_index": 0, "contact_id": b["contact_id"]},
        ("POST", "/api/v1/segments/{segment_id}/recommendations"): {"limit": 5, "seed": 1},
        ("PUT", "/api/v1/recommendations/settings"): {"half_life_days": 14},
        ("POST", "/api/v1/smart-tags"): {
            "name": "A智能标签",
            "tag_id": b["tag_id"],
            "kind": "rule",
            "rule": {"tags": [b["tag_id"]]},
        },
        ("PATCH", "/api/v1/smart-tags/{smart_tag_id}"): {"name": "hijacked", "enabled": False},
        ("POST", "/api/v1/smart-tags/keywords/test"): {"text": "多少钱"},
        ("POST", "/api/v1/segments"): {"name": "A分群", "rule": {"tags": [b["tag_id"]], "match": "any"}},
        ("POST", "/api/v1/segments/preview"): {"rule": {"segment": b["segment_id"]}},
        ("PATCH", "/api/v1/segments/{segment_id}"): {"name": "hijacked", "rule": {"identity": "phone"}},
        ("POST", "/api/v1/events"): {
            "events": [
                {
                    "id": "b1",
                    "type": "content.viewed",
                    "contact": {"id": b["contact_id"]},
                    "properties": {"content_id": "x"},
                }
            ]
        },
    }


# Routes taking a file (multipart): a sheet naming B's phone and B's staff member as owner. A's import must
# neither find B's contact nor accept B's staff.
B_SHEET = {"file": ("a.csv", "姓名,手机,负责人\r\nhijack,13600136000,zzb@b.cn\r\n".encode())}
MULTIPART = {
    ("POST", "/api/v1/imports/contacts/preview"): {"files": B_SHEET},
    ("POST", "/api/v1/imports/contacts"): {"files": B_SHEET},
}

# Routes without B's ids in the path whose bodies above name B's objects: they must refuse.
REFERENCES_B = {
    ("POST", "/api/v1/imports/contacts"),
    ("POST", "/api/v1/contacts"),
    ("POST", "/api/v1/contacts/bulk/tags"),
    ("POST", "/api/v1/tags"),
    ("POST", "/api/v1/events"),
    ("POST", "/api/v1/channel-codes"),
    ("POST", "/api/v1/segments"),
    ("POST", "/api/v1/segments/preview"),
}
for _part in DOMAIN_PARTS:
    REFERENCES_B |= set(getattr(_part, "REFERENCES_B", ()))


# Path parameters whose name another route uses for another kind of id: which seeded id of B they take.
PATH_ID_ALIASES = {
    "/api/v1/content/tag-groups/": {"group_id": "content_group_id"},
    "/api/v1/content/tags/": {"tag_id": "content_tag_id"},
    "/api/v1/groups/": {"group_id": "group_id_chat"},
    "/api/v1/group-codes/": {"code_id": "group_code_id"},
}
for _part in DOMAIN_PARTS:
    PATH_ID_ALIASES.update(getattr(_part, "PATH_ID_ALIASES", {}))


# Anyone may try a password at the public sign-in: the lock-out counter moving is the point, not a leak.
LOCK_OUT_COLUMNS = {"failed_sign_ins", "locked_until"}


def _snapshot(db, workspace_id: int) -> dict[str, list[tuple[Any, ...]]]:  # type: ignore[no-untyped-def]
    out = {}
    with db.transaction(write=False) as session:
        for table in Base.metadata.sorted_tables:
            if "workspace_id" in table.c:
                columns = [c for c in table.c if c.name not in LOCK_OUT_COLUMNS]
                rows = session.execute(select(*columns).where(table.c.workspace_id == workspace_id)).all()
                out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


def test_every_route_but_the_public_ones_needs_a_credential(app, anonymous) -> None:
    routes = _routes(app)
    assert len(routes) > 20
    for method, path in routes:
        if (method, path) in PUBLIC or not path.startswith("/api/"):
            continue
        url = re.sub(r"\{[^}]+\}", "1", path)
        response = anonymous.request(method, url, json={})
        assert response.status_code == 401, f"{method} {path} answered {response.status_code} without a credential"
        assert response.json()["error"]["code"] == "not_authenticated"
    bad = anonymous.get("/api/v1/contacts", headers={"Authorization": "Bearer siyu_key_forged"})
    assert bad.status_code == 401


def test_a_key_of_workspace_a_reads_and_changes_nothing_of_b(app, make_tenant, db) -> None:
    a, b = make_tenant("A"), make_tenant(f"{MARK}品牌")
    ids = _seed_b(b, db)
    a.client.post("/api/v1/contacts", json={"name": "A的客户"})
    before = _snapshot(db, b.workspace_id)
    bodies = REQUEST_BODIES(ids)
    for method, path in _routes(app):
        if not path.startswith("/api/"):
            continue
        params = re.findall(r"\{([^}]+)\}", path)
        url = path
        aliases = next((a for prefix, a in PATH_ID_ALIASES.items() if path.startswith(prefix)), {})
        for name in params:
            url = url.replace("{" + name + "}", str(ids[aliases.get(name, name)]))
        needs_body = (
            method in {"POST", "PATCH", "PUT"} and "requestBody" in app.openapi()["paths"][path][method.lower()]
        )
        if needs_body and (method, path) not in bodies and (method, path) not in MULTIPART:
            pytest.fail(f"{method} {path} has no request body in REQUEST_BODIES: add one so isolation is tested")
        if (method, path) in MULTIPART:
            response = a.client.request(method, url, **MULTIPART[(method, path)])
            if path.endswith("/preview"):
                assert response.status_code == 200, response.text
                (row,) = response.json()["rows"]
                assert row["existing_contact_ids"] == [], "A's preview found B's contact by its phone"
                assert any("no staff member" in p for p in row["problems"]), "A's preview accepted B's staff"
        else:
            response = a.client.request(method, url, json=bodies.get((method, path)))
        text = response.text
        assert MARK not in text, f"{method} {url} leaked workspace B data: {text[:300]}"
        if params:
            assert response.status_code in (404, 422), f"{method} {url} answered {response.status_code}: {text[:300]}"
        if (method, path) in REFERENCES_B:
            assert response.status_code in (404, 422), (
                f"{method} {url} took B's ids: {response.status_code} {text[:300]}"
            )
    after = _snapshot(db, b.workspace_id)
    for table, rows in before.items():
        assert after[table] == rows, f"workspace B's {table} rows changed through workspace A's key"
