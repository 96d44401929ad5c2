"""Evidence for sends whose outcome is unknown: did the provider take the message or not?

A request that timed out (or lost its connection) after it was sent, and a row a crash left in
flight, may or may not have reached the provider. Resending blindly risks a duplicate; giving up
blindly risks a loss. The journeys engine (journeys/settle.py) settles such a row from what this
module finds, in this order:

1. Provider events carrying our ledger id, already stored by the webhooks in `delivery_events`
   (SendGrid Event Webhook events carry our custom_args; Twilio status callbacks carry the ledger
   id in the StatusCallback URL). Any event proves the provider had the message.
2. A provider-side lookup where the provider has one (`adapter.lookup`): Twilio's Messages list
   filtered by To and DateSent, matched by sender, time and a fingerprint of the body (below).
   SendGrid's Mail Send has no lookup; FCM neither.

`fingerprint` is what a lookup matches a provider's record against without keeping message text:
a short hash of the letters and digits of what the member sees (so Twilio's smart encoding of
quotes and dashes does not change it). It is stored on the ledger row while the row is in flight.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.adapters.base import Evidence, ProviderEvidence
from channels.models import DeliveryEvent
from templates.rendered import RenderedEmail, RenderedPush, RenderedSms

FINGERPRINT_LENGTH = 16


def skeleton(text: str) -> str:
    """Letters and digits only, accents folded and case folded."""
    folded = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in folded if ch.isalnum()).casefold()


def fingerprint_text(text: str) -> str:
    return hashlib.sha256(skeleton(text).encode("utf-8")).hexdigest()[:FINGERPRINT_LENGTH]


def fingerprint(content: RenderedEmail | RenderedSms | RenderedPush) -> str:
    """What a provider record is matched on: the SMS text, the email subject, the push title and body."""
    if isinstance(content, RenderedSms):
        return fingerprint_text(content.text)
    if isinstance(content, RenderedEmail):
        return fingerprint_text(content.subject)
    return fingerprint_text(f"{content.title}\n{content.body}")


def event_evidence(session: Session, ledger_ids: Sequence[int]) -> dict[int, str | None]:
    """Ledger ids that have at least one provider event, with the provider's message id when one came."""
    found: dict[int, str | None] = {}
    for lo in range(0, len(ledger_ids), 500):
        rows = session.execute(select(DeliveryEvent.ledger_id, DeliveryEvent.provider_message_id)
                               .where(DeliveryEvent.ledger_id.in_(ledger_ids[lo:lo + 500])))
        for ledger_id, message_id in rows:
            if ledger_id is not None and (ledger_id not in found or found[ledger_id] is None):
                found[int(ledger_id)] = message_id
    return found


def provider_evidence(adapter: Any, to: str | None, fingerprint: str | None, since: datetime) -> ProviderEvidence:
    """Ask the provider itself, when its adapter can (`lookup(to, fingerprint, since)`)."""
    lookup = getattr(adapter, "lookup", None)
    if lookup is None or not to or not fingerprint:
        return ProviderEvidence(Evidence.none, source="no provider lookup")
    result: ProviderEvidence = lookup(to, fingerprint, since)
    return result
