"""The one adapter interface, the messages it takes and the results it gives back."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from channels.errors import ProviderConfigError  # re-exported: one direction only, no circle
from templates.rendered import RenderedEmail, RenderedPush, RenderedSms

__all__ = [
    "Adapter",
    "DeliveryResult",
    "DeliveryStatus",
    "Evidence",
    "OutgoingMessage",
    "ProviderConfigError",
    "ProviderEvidence",
    "unsubscribe_headers",
]


class DeliveryStatus(str, enum.Enum):
    accepted = "accepted"
    """The provider took the message; `provider_message_id` is kept."""
    permanent = "permanent"
    """It will never go to this address (bad address, opted out, token gone): do not retry."""
    retryable = "retryable"
    """The provider did not take it (429, 5xx, refused connection) and retries inside the adapter
    ran out: the engine tries again later."""
    unknown = "unknown"
    """The request was sent and no answer came (read timeout, connection lost mid-answer): the
    provider may have taken it. Never resent as is: settled from evidence first (channels.settlement)."""


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    ledger_id: int
    channel: str
    purpose: str
    journey: str
    step: str
    recipient_kind: str
    recipient_id: int
    to: str
    content: RenderedEmail | RenderedSms | RenderedPush
    unsubscribe_url: str | None = None
    categories: tuple[str, ...] = ()
    created_at: datetime | None = None
    """The engine's (possibly simulated) send instant: the outbox's Date header, the lookup window."""


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    ledger_id: int
    status: DeliveryStatus
    provider_message_id: str | None = None
    error_code: str | None = None
    reason: str | None = None
    suppression: str | None = None
    """A SuppressionReason the outcome implies for the address (e.g. "stop" on Twilio 21610)."""
    revoke_token: bool = False
    """The push token is gone (FCM UNREGISTERED): `channels.feedback` revokes it."""
    handed_over: bool = True
    """False when no request for it was made (the provider's circuit is open): the ledger row may
    go back to `reserved` without spending an attempt."""


class Adapter(Protocol):
    provider: str

    def send(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        """One result per message, in order; raises ProviderConfigError (with the results settled
        so far) on 401/403, after which nothing more is sent."""
        ...


def unsubscribe_headers(message: OutgoingMessage) -> dict[str, str]:
    """RFC 2369 List-Unsubscribe and RFC 8058 one-click, on marketing email only."""
    if message.purpose != "marketing" or not message.unsubscribe_url:
        return {}
    return {
        "List-Unsubscribe": f"<{message.unsubscribe_url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


class Evidence(str, enum.Enum):
    accepted = "accepted"
    """The provider has the message (found in its records): never send it again."""
    absent = "absent"
    """The provider's own records, searched over the whole window, do not have it."""
    none = "none"
    """Nothing can be said (no lookup for this provider, or the lookup failed)."""


@dataclass(frozen=True, slots=True)
class ProviderEvidence:
    """What a provider-side lookup found for one message whose outcome was unknown."""

    evidence: Evidence
    provider_message_id: str | None = None
    source: str = ""
