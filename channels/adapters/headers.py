"""Member data on its way into mail headers and provider fields: cleaned, encoded, or refused per recipient.

- Text (subject, display names): control characters go (C0 including the \\x1c-\\x1e "line
  separators" that `str.splitlines` and so the email package fold on, DEL, C1); line breaks and
  tabs become spaces. Non-ASCII is left to RFC 2047 encoding by the caller.
- Addresses: the domain goes to IDNA (UTS #46, as browsers and MTAs do), the local part stays as
  written; a non-ASCII local part needs SMTPUTF8 (RFC 6531), so a provider that cannot take it
  refuses that recipient with `invalid_contact`, never the batch.
Errors name the ledger id and the code only, never the value.
"""

from __future__ import annotations

import re

import idna

from channels.errors import MessageRejected

INVALID_CONTACT = "invalid_contact"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
_SPACE = re.compile(r"[\t\n\r]+")
_ATOM_BREAKERS = re.compile(r"[\s<>()\[\],;:\"\\]")


def clean_text(value: str) -> str:
    """One header-safe line: no control characters, no line breaks."""
    return _CONTROL.sub("", _SPACE.sub(" ", value)).strip()


def encode_address(ledger_id: int, address: str, *, smtputf8: bool) -> str:
    """`local@domain` with the domain in IDNA; MessageRejected(invalid_contact) when it cannot be."""
    address = address.strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or _CONTROL.search(address) or _ATOM_BREAKERS.search(local + domain):
        raise MessageRejected(ledger_id, INVALID_CONTACT, "malformed address")
    if not local.isascii() and not smtputf8:
        raise MessageRejected(ledger_id, INVALID_CONTACT, "non-ASCII local part needs SMTPUTF8")
    try:
        ascii_domain = domain if domain.isascii() else idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError:
        raise MessageRejected(ledger_id, INVALID_CONTACT, "domain is not a valid IDNA name") from None
    return f"{local}@{ascii_domain.lower()}"
