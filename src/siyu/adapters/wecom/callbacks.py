"""Handling one WeCom callback: authenticate and decrypt, parse, map to siyu events, send the welcome.

The HTTP endpoint (`/callbacks/wecom/{workspace}`) and the per-workspace configuration storage are wired
elsewhere; this module is what they call:

    GET  → `verify_url(config, msg_signature, timestamp, nonce, echostr)`; answer the returned text.
    POST → `open_callback(config, body, msg_signature, timestamp, nonce)` → `to_siyu_events(...)`, store
           the events, then `send_welcome(...)` for an `ExternalContactAdded` carrying a welcome_code.

A callback that fails its signature, decryption, receive-id or XML checks raises `CallbackRejected`
before anything is parsed or returned: nothing of it is processed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from siyu.adapters.wecom.client import WELCOME_WINDOW_SECONDS, WeComClient
from siyu.adapters.wecom.crypto import WeComCrypto
from siyu.adapters.wecom.errors import WeComError, WelcomeAlreadySent
from siyu.adapters.wecom.events import ExternalContactAdded, WeComCallback, parse_callback


@dataclass(frozen=True)
class WeComConfig:
    """A workspace's WeCom settings (stored per workspace later; a plain value here)."""

    corp_id: str
    secret: str = field(repr=False)  # secret of the 客户联系 app, or of a self-built app granted it
    token: str = field(repr=False)  # callback Token
    encoding_aes_key: str = field(repr=False)  # callback EncodingAESKey (43 characters)
    agent_id: int | None = None

    def crypto(self) -> WeComCrypto:
        return WeComCrypto(self.token, self.encoding_aes_key, self.corp_id)

    def client(self, **kwargs: Any) -> WeComClient:
        return WeComClient(self.corp_id, self.secret, **kwargs)


def verify_url(config: WeComConfig, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
    return config.crypto().verify_url(msg_signature, timestamp, nonce, echostr)


def open_callback(
    config: WeComConfig, body: bytes | str, msg_signature: str, timestamp: str, nonce: str
) -> WeComCallback:
    """Verify, decrypt and parse a POSTed callback."""
    plaintext = config.crypto().decrypt_message(body, msg_signature, timestamp, nonce)
    return parse_callback(plaintext)


@dataclass(frozen=True)
class Welcome:
    """What a channel code sends to a new contact: text and/or WeCom attachments (image, link, ...)."""

    text: str | None = None
    attachments: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True)
class WelcomeOutcome:
    status: Literal["sent", "already_sent", "expired", "failed", "skipped"]
    error: WeComError | None = None


def send_welcome(
    client: WeComClient,
    callback: ExternalContactAdded,
    welcome: Welcome | None,
    *,
    received_at: float | None = None,
) -> WelcomeOutcome:
    """Send `welcome` with the callback's welcome_code inside WeCom's 20 s window.

    `received_at` is the `client.clock()` time the callback arrived (default: now). Never raises for a
    WeCom refusal: the contact is attributed whatever happens to the welcome. 41051 means it was already
    sent (or the contact already chatted): reported as `already_sent`, not retried.
    """
    if welcome is None or not callback.welcome_code or not (welcome.text or welcome.attachments):
        return WelcomeOutcome("skipped")
    start = client.clock() if received_at is None else received_at
    deadline = start + WELCOME_WINDOW_SECONDS
    if client.clock() >= deadline:
        return WelcomeOutcome("expired")
    try:
        client.send_welcome_msg(
            callback.welcome_code, text=welcome.text, attachments=welcome.attachments, deadline=deadline
        )
    except WelcomeAlreadySent as exc:
        return WelcomeOutcome("already_sent", exc)
    except WeComError as exc:
        return WelcomeOutcome("failed", exc)
    return WelcomeOutcome("sent")
