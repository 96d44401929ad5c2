"""Who may be sent what: pure functions, no I/O, so every rule is property-tested.

- marketing needs an opt-in for that channel (and the recipient is a member);
- transactional goes unless the address is suppressed or the person opted out of it on that channel;
- staff purpose reaches staff only (they cannot opt out of work bulletins, but suppression holds);
- a suppressed address receives nothing, whatever the consent says.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from templates.vocabulary import Channel, Purpose


class ConsentState(str, enum.Enum):
    """Current consent for one person, channel and purpose: the latest event wins."""

    opted_in = "opted_in"
    opted_out = "opted_out"
    unknown = "unknown"


class SkipReason(str, enum.Enum):
    no_consent = "no_consent"
    opted_out = "opted_out"
    suppressed = "suppressed"
    invalid_contact = "invalid_contact"
    no_contact = "no_contact"
    frequency_cap = "frequency_cap"
    not_staff = "not_staff"
    not_member = "not_member"
    invalid_time_zone = "invalid_time_zone"
    unknown_channel = "unknown_channel"
    unknown_purpose = "unknown_purpose"


@dataclass(frozen=True, slots=True)
class Allow:
    pass


@dataclass(frozen=True, slots=True)
class Deny:
    reason: SkipReason


Decision = Allow | Deny

CHANNELS = frozenset(c.value for c in Channel)  # one vocabulary: the enums the records are stored with
PURPOSES = frozenset(p.value for p in Purpose)


def consent_decision(
    purpose: str, channel: str, recipient_kind: str, consent_state: ConsentState, suppressed: bool
) -> Decision:
    if channel not in CHANNELS:
        return Deny(SkipReason.unknown_channel)
    if purpose not in PURPOSES:
        return Deny(SkipReason.unknown_purpose)
    if purpose == "staff":
        if recipient_kind != "staff":
            return Deny(SkipReason.not_staff)
    elif recipient_kind != "member":
        return Deny(SkipReason.not_member)
    if suppressed:
        return Deny(SkipReason.suppressed)
    if purpose == "marketing":
        if consent_state is ConsentState.opted_in:
            return Allow()
        if consent_state is ConsentState.opted_out:
            return Deny(SkipReason.opted_out)
        return Deny(SkipReason.no_consent)
    if purpose == "transactional" and consent_state is ConsentState.opted_out:
        return Deny(SkipReason.opted_out)
    return Allow()
