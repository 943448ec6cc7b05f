"""Identity normalisation: the same person is found however their identity was typed."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from siyu.contacts.identities import IdentityError, _phone_full, normalize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "+8613800138000"),
        ("138 0013 8000", "+8613800138000"),
        ("138-0013-8000", "+8613800138000"),
        ("+86 138 0013 8000", "+8613800138000"),
        ("0086 13800138000", "+8613800138000"),
        ("(+86) 13800138000", "+8613800138000"),
        ("+1 650-253-0000", "+16502530000"),
        ("010-12345678", "+861012345678"),
    ],
)
def test_phone_forms(raw: str, expected: str) -> None:
    assert normalize("phone", raw) == expected


@pytest.mark.parametrize("raw", ["12345", "1380013800", "abc", "10000000000", ""])
def test_bad_phones_are_refused(raw: str) -> None:
    with pytest.raises(IdentityError):
        normalize("phone", raw)


@given(st.from_regex(r"\A1[0-9]{10}\Z"), st.sampled_from(["", "+86", "0086", "+86 "]))
def test_the_mobile_fast_path_agrees_with_phonenumbers(digits: str, prefix: str) -> None:
    raw = prefix + digits
    try:
        slow: str | None = _phone_full.__wrapped__(raw, "CN")
    except IdentityError:
        slow = None
    try:
        fast: str | None = normalize("phone", raw, region="CN")
    except IdentityError:
        fast = None
    assert fast == slow
    if fast is not None:
        assert phonenumbers.is_valid_number(phonenumbers.parse(fast))


def test_email_and_types() -> None:
    assert normalize("email", " Wang@Example.COM ") == "wang@example.com"
    assert normalize("member_no", 12345) == "12345"
    with pytest.raises(IdentityError, match="not valid"):
        normalize("Member No", "1")
    with pytest.raises(IdentityError, match="not an email"):
        normalize("email", "nobody")
    with pytest.raises(IdentityError, match="longer than"):
        normalize("wechat_unionid", "x" * 300)
