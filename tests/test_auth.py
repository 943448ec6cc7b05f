"""Staff sign-in: sessions, sign-out, expiry and lock-out after repeated wrong passwords."""

from __future__ import annotations

from conftest import PASSWORD
from siyu.staff.models import Role


def _sign_in(anonymous, email: str, password: str):  # type: ignore[no-untyped-def]
    return anonymous.post("/api/v1/auth/sessions", json={"email": email, "password": password})


def test_sign_in_then_out(tenant, anonymous) -> None:
    tenant.as_staff("ops@brand.cn", role=Role.operator)
    signed = _sign_in(anonymous, "OPS@brand.cn", PASSWORD)
    assert signed.status_code == 201
    token = signed.json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    me = anonymous.get("/api/v1/auth/me", headers=headers).json()
    assert me["role"] == "operator" and "staff:write" not in me["scopes"]
    assert anonymous.delete("/api/v1/auth/sessions/current", headers=headers).status_code == 204
    assert anonymous.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_sessions_expire(tenant, anonymous, clock) -> None:
    tenant.as_staff("c@brand.cn")
    token = _sign_in(anonymous, "c@brand.cn", PASSWORD).json()["token"]
    clock.advance(hours=13)
    expired = anonymous.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]


def test_five_wrong_passwords_lock_the_account_for_a_while(tenant, anonymous, clock) -> None:
    tenant.as_staff("c@brand.cn")
    for _ in range(4):
        assert _sign_in(anonymous, "c@brand.cn", "wrong password").status_code == 401
    assert _sign_in(anonymous, "c@brand.cn", PASSWORD).status_code == 201  # success resets the count
    for _ in range(5):
        wrong = _sign_in(anonymous, "c@brand.cn", "wrong password")
        assert wrong.json()["error"]["message"] == "email or password is wrong"
    locked = _sign_in(anonymous, "c@brand.cn", PASSWORD)
    assert locked.status_code == 401 and "locked until" in locked.json()["error"]["message"]
    clock.advance(minutes=16)
    assert _sign_in(anonymous, "c@brand.cn", PASSWORD).status_code == 201


def test_unknown_email_and_deactivated_staff(tenant, anonymous) -> None:
    staff_id, _ = tenant.as_staff("gone@brand.cn")
    assert _sign_in(anonymous, "nobody@brand.cn", PASSWORD).status_code == 401
    tenant.client.patch(f"/api/v1/staff/{staff_id}", json={"is_active": False})
    assert _sign_in(anonymous, "gone@brand.cn", PASSWORD).status_code == 401


def test_staff_carry_their_wecom_userid(tenant) -> None:
    created = tenant.client.post(
        "/api/v1/staff", json={"email": "w@brand.cn", "name": "企微", "role": "consultant", "wecom_userid": "ZhangSan"}
    ).json()
    assert created["wecom_userid"] == "ZhangSan"
    changed = tenant.client.patch(f"/api/v1/staff/{created['id']}", json={"wecom_userid": "LiSi"}).json()
    assert changed["wecom_userid"] == "LiSi"
