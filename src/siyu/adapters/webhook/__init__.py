"""Outbound webhooks: an HMAC-SHA256-signed JSON POST with an idempotency key.

Headers sent with every delivery:
- `X-Siyu-Delivery`: the delivery id. It stays the same on every retry of that delivery, so a receiver
  that stores the ids it has handled drops repeats (a retry after a timeout, a worker that died after
  the call and before recording it);
- `X-Siyu-Timestamp`: Unix seconds when this attempt was signed;
- `X-Siyu-Signature`: `sha256=` + hex HMAC-SHA256 of `<timestamp>.<raw body>` under the workspace's
  webhook secret. Receivers recompute it, compare in constant time, and refuse timestamps more than a
  few minutes old (replays).

Outcomes: 2xx delivered; 408, 425, 429, 5xx and network errors are worth retrying; any other status is
a permanent refusal.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import httpx

SIGNATURE_HEADER = "X-Siyu-Signature"
TIMESTAMP_HEADER = "X-Siyu-Timestamp"
DELIVERY_HEADER = "X-Siyu-Delivery"
RETRYABLE_STATUSES = frozenset({408, 425, 429})
USER_AGENT = "siyu-webhooks/1"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """What a receiver does (also used by the tests): recompute and compare in constant time."""
    try:
        expected = signature(secret, int(timestamp), body)
    except ValueError:
        return False
    return hmac.compare_digest(expected, header)


@dataclass(frozen=True)
class WebhookResult:
    ok: bool
    retryable: bool
    status_code: int | None
    error: str | None


def post(
    url: str,
    body: bytes,
    *,
    secret: str,
    delivery_key: str,
    timestamp: int,
    timeout: float = 10.0,
    client: httpx.Client | None = None,
) -> WebhookResult:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        DELIVERY_HEADER: delivery_key,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }
    try:
        if client is not None:
            response = client.post(url, content=body, headers=headers, timeout=timeout)
        else:
            with httpx.Client(timeout=timeout, follow_redirects=False) as own:
                response = own.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return WebhookResult(False, True, None, f"{type(exc).__name__}: {exc}"[:300])
    status = response.status_code
    if 200 <= status < 300:
        return WebhookResult(True, False, status, None)
    retryable = status >= 500 or status in RETRYABLE_STATUSES
    return WebhookResult(False, retryable, status, f"HTTP {status}: {response.text[:200]}")
