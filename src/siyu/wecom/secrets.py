"""Encryption at rest for WeCom secrets: Fernet with a key derived from siyu's secret key.

The secret key is the console's (SIYU_SECRET_KEY, or the one generated under the var directory), so
every server and worker process sharing that key can read the settings; changing it makes stored WeCom
secrets unreadable (save the WeCom settings again).
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

from siyu.config import Settings
from siyu.console.csrf import secret_key
from siyu.errors import SiyuError


class SecretUnreadable(SiyuError):
    status_code = 500
    code = "wecom_secret_unreadable"


def fernet(settings: Settings) -> Fernet:
    digest = hashlib.sha256(b"siyu:wecom-settings:" + secret_key(settings)).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(settings: Settings, value: str) -> str:
    return fernet(settings).encrypt(value.encode("utf-8")).decode("ascii")


def decrypt(settings: Settings, token: str) -> str:
    try:
        return fernet(settings).decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise SecretUnreadable(
            "the stored WeCom settings cannot be decrypted with this server's secret key "
            "(SIYU_SECRET_KEY changed?); save the WeCom settings again"
        ) from None


def hint(value: str) -> str:
    return "••••" + value[-4:] if len(value) > 8 else "••••"
