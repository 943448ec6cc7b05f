"""Typed errors: each carries its HTTP status, a stable code and a message saying what to do.

Every error leaves the API in one shape:
    {"error": {"code": "...", "message": "...", "details": [...]}}
"""

from __future__ import annotations

from typing import Any


class SiyuError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return {"error": body}


class NotAuthenticated(SiyuError):
    status_code = 401
    code = "not_authenticated"


class PermissionDenied(SiyuError):
    status_code = 403
    code = "permission_denied"


class NotFound(SiyuError):
    status_code = 404
    code = "not_found"


class Conflict(SiyuError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(SiyuError):
    status_code = 413
    code = "payload_too_large"


class ValidationFailed(SiyuError):
    """Input that does not validate. `details` lists each problem: where it is and why."""

    status_code = 422
    code = "validation_failed"


def validation_error(field: str, reason: str, **extra: Any) -> ValidationFailed:
    return ValidationFailed(f"{field}: {reason}", details=[{"field": field, "reason": reason, **extra}])
