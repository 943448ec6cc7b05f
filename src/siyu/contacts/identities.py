"""Identity types and how each value is normalised, so the same person is found however it was typed."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

import phonenumbers

STANDARD_IDENTITY_TYPES: dict[str, str] = {
    "wecom_external_userid": "WeCom external contact id (企业微信外部联系人 external_userid)",
    "wechat_unionid": "WeChat UnionID, shared across a brand's official accounts and mini-programs",
    "wechat_openid": "WeChat OpenID of one official account or mini-program",
    "phone": "mobile phone number; stored as E.164 (+8613800138000)",
    "email": "email address; stored lower-cased",
    "douyin_open_id": "Douyin (抖音) open_id",
    "xiaohongshu_id": "Xiaohongshu (小红书) user id",
    "taobao_nick": "Taobao (淘宝) buyer nick",
    "external_id": "the integrator's own customer id",
}

# Custom identity types (a shop's member number, an app's user id ...) follow this pattern.
CUSTOM_TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
MAX_VALUE_LENGTH = 256
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class IdentityError(ValueError):
    """The reason an identity is not acceptable, worded for the caller."""


def check_type(identity_type: str) -> str:
    if identity_type in STANDARD_IDENTITY_TYPES or CUSTOM_TYPE_PATTERN.match(identity_type):
        return identity_type
    raise IdentityError(
        f"identity type {identity_type!r} is not valid: use a standard type "
        f"({', '.join(STANDARD_IDENTITY_TYPES)}) or a custom one matching {CUSTOM_TYPE_PATTERN.pattern}"
    )


# Chinese mobile numbers are most of what arrives; phonenumbers' full parse costs ~130 µs each, so
# numbers matching its own CN mobile pattern take a fast path with the same answer (tested).
def _cn_mobile_pattern() -> re.Pattern[str]:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    assert metadata is not None and metadata.mobile is not None and metadata.mobile.national_number_pattern
    return re.compile(metadata.mobile.national_number_pattern)


_CN_MOBILE = _cn_mobile_pattern()
_PHONE_SEPARATORS = re.compile(r"[\s\-().]")


def _phone(value: str, region: str) -> str:
    compact = _PHONE_SEPARATORS.sub("", value)
    national: str | None = None
    if compact.startswith("+86"):
        national = compact[3:]
    elif compact.startswith("0086"):
        national = compact[4:]
    elif region == "CN":
        national = compact
    if national is not None and len(national) == 11 and _CN_MOBILE.fullmatch(national):
        return "+86" + national
    return _phone_full(value, region)


@lru_cache(maxsize=65536)
def _phone_full(value: str, region: str) -> str:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise IdentityError(f"{value!r} is not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise IdentityError(f"{value!r} is not a valid phone number")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _email(value: str, _region: str) -> str:
    value = value.lower()
    if not _EMAIL.match(value):
        raise IdentityError(f"{value!r} is not an email address")
    return value


_NORMALISERS: dict[str, Callable[[str, str], str]] = {"phone": _phone, "email": _email}


def normalize(identity_type: str, value: object, *, region: str = "CN") -> str:
    """Checks the type and returns the canonical value, or raises IdentityError saying what is wrong."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        check_type(identity_type)
        raise IdentityError("identity value must be a string")
    return _normalize(identity_type, value, region)


# The same people come back event after event: remember recent answers (errors are not cached).
@lru_cache(maxsize=1 << 17)
def _normalize(identity_type: str, value: str | int, region: str) -> str:
    check_type(identity_type)
    text = str(value).strip()
    if not text:
        raise IdentityError("identity value must not be empty")
    if len(text) > MAX_VALUE_LENGTH:
        raise IdentityError(f"identity value is longer than {MAX_VALUE_LENGTH} characters")
    if "\x00" in text:
        raise IdentityError("identity value must not contain a NUL character (\\u0000)")
    normaliser = _NORMALISERS.get(identity_type)
    return normaliser(text, region) if normaliser else text
