"""The caller of a request: which workspace, which staff member or API key, and what they may do."""

from __future__ import annotations

from dataclasses import dataclass

from siyu.auth.scopes import Scope
from siyu.errors import PermissionDenied
from siyu.staff.models import Role
from siyu.tags.models import TagSource


@dataclass(frozen=True, slots=True)
class Principal:
    workspace_id: int
    scopes: frozenset[Scope]
    staff_id: int | None = None
    role: Role | None = None
    api_key_id: int | None = None

    def require(self, scope: Scope) -> None:
        if scope not in self.scopes:
            who = f"role {self.role.value}" if self.role else "this API key"
            raise PermissionDenied(f"{who} lacks the scope {scope.value!r} needed here")

    @property
    def owned_contacts_only(self) -> int | None:
        """A consultant sees and changes only the contacts they own: returns their staff id, else None."""
        return self.staff_id if self.role is Role.consultant else None

    @property
    def tag_source(self) -> TagSource:
        return TagSource.api if self.api_key_id is not None else TagSource.manual
