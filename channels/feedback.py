"""What providers tell us back changes what we do: suppressions, revoked tokens, delivery events.

Called by the journeys engine after a send (permanent outcomes) and by the webhooks (events).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from audiences.models import DeviceToken
from channels.adapters.base import DeliveryResult, DeliveryStatus, OutgoingMessage
from channels.consent import suppress
from channels.models import DeliveryEvent, DeliveryEventKind


def revoke_device_token(session: Session, token: str, at: datetime) -> bool:
    """Mark a push token gone (FCM UNREGISTERED); False when it was unknown or already revoked."""
    revoked = session.execute(
        update(DeviceToken)
        .where(DeviceToken.token == token, DeviceToken.revoked_at.is_(None))
        .values(revoked_at=at)
        .returning(DeviceToken.id)
    ).all()
    return bool(revoked)


def apply_delivery_results(
    session: Session, provider: str, messages: Sequence[OutgoingMessage], results: Sequence[DeliveryResult], at: datetime
) -> int:
    """Suppress addresses and revoke tokens that permanent outcomes condemn; returns how many changed."""
    by_ledger = {m.ledger_id: m for m in messages}
    changed = 0
    for result in results:
        message = by_ledger.get(result.ledger_id)
        if message is None or result.status is not DeliveryStatus.permanent:
            continue
        if result.revoke_token and message.channel == "push":
            changed += revoke_device_token(session, message.to, at)
        if result.suppression:
            changed += suppress(
                session, channel=message.channel, address=message.to, reason=result.suppression, source=provider, at=at
            )
    return changed


def record_delivery_event(
    session: Session,
    *,
    provider: str,
    event: str,
    occurred_at: datetime,
    ledger_id: int | None = None,
    provider_message_id: str | None = None,
    provider_event_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> bool:
    """Append one provider event; False when that provider event id was already stored."""
    if provider_event_id is not None:
        exists = session.scalar(select(DeliveryEvent.id).where(DeliveryEvent.provider_event_id == provider_event_id))
        if exists is not None:
            return False
    session.add(
        DeliveryEvent(
            provider=provider,
            event=DeliveryEventKind(event),
            occurred_at=occurred_at,
            ledger_id=ledger_id,
            provider_message_id=provider_message_id,
            provider_event_id=provider_event_id,
            detail=detail,
        )
    )
    session.flush()
    return True
