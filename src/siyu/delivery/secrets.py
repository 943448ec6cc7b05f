"""The webhook signing secret: made by siyu, stored encrypted (Fernet, key derived from the server's
secret key), shown to the operator once when it is made."""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken

from siyu.config import Settings
from siyu.console.csrf import secret_key
from siyu.errors import SiyuError

PREFIX = "whsec_"


class SecretUnreadable(SiyuError):
    status_code = 500
    code = "delivery_secret_unreadable"


def _settings() -> Settings:
    from siyu.wecom.service import current_settings

    return current_settings()


def _fernet(settings: Settings) -> Fernet:
    digest = hashlib.sha256(b"siyu:delivery-webhook:" + secret_key(settings)).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def hint(value: str) -> str:
    return PREFIX + "••••" + value[-4:]


def new_secret_values(settings: Settings | None = None) -> tuple[str, str, str]:
    """(secret, encrypted, hint) of a new random secret."""
    value = PREFIX + secrets.token_urlsafe(32)
    return value, encrypt(value, settings), hint(value)


def encrypt(value: str, settings: Settings | None = None) -> str:
    return _fernet(settings or _settings()).encrypt(value.encode()).decode("ascii")


def decrypt(token: str, settings: Settings | None = None) -> str:
    try:
        return _fernet(settings or _settings()).decrypt(token.encode("ascii")).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "the webhook secret cannot be decrypted with this server's secret key (SIYU_SECRET_KEY changed?); "
            "make a new one: POST /api/v1/delivery/settings/webhook-secret"
        ) from None
