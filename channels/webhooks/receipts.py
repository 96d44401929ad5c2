"""Refuse a webhook request already applied: providers' signatures do not expire on their own
(Twilio's carries no timestamp at all), so a captured request could be sent again.

The receipt is keyed on what the provider signed, not on the signature's bytes: an ECDSA signature
has a second valid form (r, n - s) for the same message, so a key on the signature would let that
twin through. It is inserted in the same transaction as the request's effects: a replay finds it
and changes nothing; a request whose processing failed left no receipt, so the provider's own
retry still goes through.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import Engine, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from audiences.db import session_scope
from channels.models import WebhookReceipt

PRUNE_EVERY = 1000
T = TypeVar("T")
log = logging.getLogger("loyalflow.webhooks")


def first_receipt(session: Session, provider: str, signed: str | bytes, now: datetime, retention: timedelta) -> bool:
    """Record the request; False when the same signed content was already applied (a replay)."""
    key = hashlib.sha256(signed.encode() if isinstance(signed, str) else signed).hexdigest()
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


class _Replayed(Exception):
    """Raised inside the transaction so that nothing of a replayed request is kept."""


async def apply_once(
    engine: Engine, provider: str, signed: str | bytes, now: datetime, retention: timedelta,
    apply: Callable[[Session], T], *, route: str,
) -> T:
    """Write the receipt, then `apply` its effects, in one transaction off the event loop;
    a replay is HTTPException 403 and changes nothing."""

    def run() -> T:
        with session_scope(engine) as session:
            if not first_receipt(session, provider, signed, now, retention):
                raise _Replayed
            return apply(session)

    try:
        return await run_in_threadpool(run)
    except _Replayed:
        log.warning("refused %s request: replayed request", route)
        raise HTTPException(403, "forbidden") from None
