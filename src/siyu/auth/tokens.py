"""Secrets: random tokens shown once and stored as SHA-256; staff passwords as argon2id."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

API_KEY_PREFIX = "siyu_key_"
SESSION_PREFIX = "siyu_sess_"

_hasher = PasswordHasher()


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is safe here (unlike passwords).
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# Verifying against this when no staff matches keeps sign-in time the same whether or not the email exists.
DUMMY_PASSWORD_HASH = hash_password("siyu-timing-equaliser")
