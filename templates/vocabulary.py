"""The words every layer shares: the channels a message leaves by, the purposes consent is given for,
and the kinds of recipient. One definition, here at the lowest layer that speaks of messages, so a
new channel is one edit (plus its adapter and templates).

They are `str` enums: stored and compared as plain text ("email"), typed where it helps.
"""

from __future__ import annotations

import enum


class Channel(str, enum.Enum):
    email = "email"
    sms = "sms"
    push = "push"


class Purpose(str, enum.Enum):
    marketing = "marketing"
    transactional = "transactional"
    staff = "staff"


class RecipientKind(str, enum.Enum):
    member = "member"
    staff = "staff"


CHANNELS: tuple[str, ...] = tuple(c.value for c in Channel)
PURPOSES: tuple[str, ...] = tuple(p.value for p in Purpose)
RECIPIENT_KINDS: tuple[str, ...] = tuple(k.value for k in RecipientKind)
