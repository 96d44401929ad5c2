"""Contact validity at send time: the loyalty data is not trusted to hold sendable addresses.

Email: syntax only (email-validator, no DNS: sends must not wait on resolvers; plain ASCII
addresses it certainly accepts take a cheap precheck instead, with the same result). SMS: phonenumbers,
and only numbers that can receive texts (mobile, or fixed-line-or-mobile where a country's plan
cannot tell them apart, e.g. the US); landlines are refused. Push: a non-empty device token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from phonenumbers import PhoneNumberType

SMS_CAPABLE = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})


@dataclass(frozen=True, slots=True)
class ContactCheck:
    ok: bool
    address: str | None
    """The normalised address (the suppression list's key) when ok."""
    problem: str | None = None


_ATEXT = r"[a-zA-Z0-9_!#$%&'*+\-/=?^`{|}~]"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
_PLAIN_EMAIL = re.compile(rf"({_ATEXT}+(?:\.{_ATEXT}+)*)@((?:{_LABEL}\.)+[a-zA-Z]{{2,63}})")
_SPECIAL_USE = tuple(SPECIAL_USE_DOMAIN_NAMES)


def _plain_email(address: str) -> str | None:
    """The normalised form of a plain ASCII address that email-validator certainly accepts (dot-atom
    local part, hostname labels, a letters-only top-level domain, within every length limit, no
    special-use domain, no `--` that IDNA would look at), else None: such addresses, most of a
    loyalty database, skip the full validation (~60 µs each). Anything unusual takes the full way."""
    found = _PLAIN_EMAIL.fullmatch(address)
    if found is None or len(address) > 254 or len(found.group(1)) > 64:
        return None
    domain = found.group(2).lower()
    if len(domain) > 253 or "--" in domain or domain.endswith(_SPECIAL_USE_SUFFIXES) or domain in _SPECIAL_USE:
        return None
    return address.lower()


_SPECIAL_USE_SUFFIXES = tuple("." + d for d in SPECIAL_USE_DOMAIN_NAMES)


@lru_cache(maxsize=65536)  # pure; repeated ticks and simulations see the same addresses again
def check_email(address: str) -> ContactCheck:
    if (plain := _plain_email(address)) is not None:
        return ContactCheck(True, plain)
    try:
        result = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        return ContactCheck(False, None, str(exc))
    return ContactCheck(True, result.normalized.lower())


@lru_cache(maxsize=65536)
def check_sms_number(address: str, country: str | None = None) -> ContactCheck:
    try:
        number = phonenumbers.parse(address, (country or "US").upper())
    except phonenumbers.NumberParseException as exc:
        return ContactCheck(False, None, f"not a phone number: {exc}")
    if not phonenumbers.is_valid_number(number):
        return ContactCheck(False, None, "not a valid phone number")
    if phonenumbers.number_type(number) not in SMS_CAPABLE:
        return ContactCheck(False, None, "not a mobile number")
    return ContactCheck(True, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def check_push_token(address: str) -> ContactCheck:
    token = address.strip()
    if not token or len(token) > 512 or any(c.isspace() for c in token):
        return ContactCheck(False, None, "not a device token")
    return ContactCheck(True, token)


def check_contact(channel: str, address: str | None, country: str | None = None) -> ContactCheck | None:
    """None when there is no address at all (a different skip reason than an invalid one)."""
    if address is None or not address.strip():
        return None
    if channel == "email":
        return check_email(address)
    if channel == "sms":
        return check_sms_number(address, country)
    if channel == "push":
        return check_push_token(address)
    raise ValueError(f"unknown channel {channel!r}")


def normalise(channel: str, address: str, country: str | None = None) -> str:
    """The suppression key for an address; an invalid address is kept as given, stripped (lower-case for email)."""
    check = check_contact(channel, address, country)
    if check is not None and check.ok and check.address:
        return check.address
    stripped = address.strip()
    return stripped.lower() if channel == "email" else stripped
