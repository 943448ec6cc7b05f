"""Console fixtures: staff signed in through the console's own sign-in form (cookie + CSRF)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from console_helpers import PASSWORD, ConsoleStaff, sign_in_client

from siyu.staff.models import Role


@pytest.fixture
def console_staff(app, tenant) -> Callable[..., ConsoleStaff]:  # type: ignore[no-untyped-def]
    def make(email: str = "op@brand.cn", role: Role = Role.operator, name: str = "运营小李") -> ConsoleStaff:
        created = tenant.client.post(
            "/api/v1/staff", json={"email": email, "name": name, "role": role.value, "password": PASSWORD}
        )
        assert created.status_code == 201, created.text
        return ConsoleStaff(created.json()["id"], sign_in_client(app, email))

    return make
