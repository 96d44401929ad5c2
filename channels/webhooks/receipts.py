"""Refuse a webhook request already applied: providers' signatures do not expire on their own
(Twilio's carries no timestamp at all), so a captured request could be sent again.

The receipt (a hash of the signature) is inserted in the same transaction as the request's
effects: a replay finds it and changes nothing; a request whose processing failed left no
receipt, so the provider's own retry still goes through.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from channels.models import WebhookReceipt

PRUNE_EVERY = 1000


def first_receipt(session: Session, provider: str, signature: str, now: datetime, retention: timedelta) -> bool:
    """Record the request; False when the same signature was already applied (a replay)."""
    key = hashlib.sha256(signature.encode()).hexdigest()
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    new_id = session.execute(
        insert(WebhookReceipt)
        .values(provider=provider, key=key, received_at=now)
        .on_conflict_do_nothing(index_elements=["provider", "key"])
        .returning(WebhookReceipt.id)
    ).scalar_one_or_none()
    if new_id is None:
        return False
    if new_id % PRUNE_EVERY == 0:  # now and then, forget receipts older than any replay we refuse
        session.execute(delete(WebhookReceipt).where(WebhookReceipt.received_at < now - retention))
    return True
