"""The cheap email precheck agrees with email-validator: whatever it accepts, the validator accepts
with the same normalised address; anything else goes the full way (same skip reason as before)."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from channels.contacts import _plain_email, check_contact, check_email


def full(address: str) -> str | None:
    try:
        return validate_email(address, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


pieces = st.sampled_from(["a", "Z", "0", "9", ".", "-", "_", "+", "=", "'", "!", "~", "xn--", "--", "é", " ", "@",
                          "test", "local", "localhost", "onion", "invalid", "arpa", "com", "co", "1"])
text = st.lists(pieces, min_size=1, max_size=12).map("".join)
labels = st.lists(text, min_size=1, max_size=4).map(".".join)


@hsettings(max_examples=600, deadline=None)
@given(text, labels)
def test_the_precheck_never_accepts_what_the_validator_refuses_nor_normalises_differently(local: str,
                                                                                          domain: str) -> None:
    address = f"{local}@{domain}"
    plain = _plain_email(address)
    if plain is not None:
        assert plain == full(address), address


@pytest.mark.parametrize("address", [
    "Ana@Example.COM", "a.b+tag@mail.example.co.uk", "o'brien@example.ie", "user@123.example.com",
    "info@EXAMPLE.org", "a=b@d.io",
])
def test_plain_addresses_take_the_precheck_with_the_validators_result(address: str) -> None:
    assert _plain_email(address) == full(address) and full(address) is not None


@pytest.mark.parametrize("address", [
    "a..b@example.com", ".a@example.com", "a@localhost", "a@x.test", "a@b.local", "a@b.c1", "a@-b.com",
    "a@xn--bcher-kva.com", "a@ab--c.com", "x" * 65 + "@example.com", " ana@example.com", "ana@example.com ",
    "anä@example.com", "ana@exämple.com", "ana@example", "ana", "@example.com",
])
def test_anything_unusual_takes_the_full_validation(address: str) -> None:
    assert _plain_email(address) is None
    check = check_email(address)
    assert check.ok == (full(address) is not None)
    assert check.address == full(address)


def test_an_invalid_address_is_still_refused_with_the_validators_problem() -> None:
    check = check_contact("email", "ana@@example.com")
    assert check is not None and not check.ok and check.problem
