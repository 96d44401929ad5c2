"""SendGrid's signed Event Webhook: verify, then let each event change what we do.

Signature: ECDSA P-256 / SHA-256 over the timestamp header followed by the raw body, checked with
the SDK's EventWebhook helper against the public key from settings. Events carry our custom_args
(ledger_id, recipient_kind, recipient_id) at top level, which is how they join back.

- bounce (type "bounce") -> suppression hard_bounce; "blocked" is temporary and only recorded
- spamreport -> suppression spam_complaint, and an opt-out of marketing email
- unsubscribe / group_unsubscribe -> an opt-out of marketing email (suppression when the
  recipient is unknown, so it is honoured anyway)
- dropped because SendGrid already knows the address as bounced, reported as spam or invalid ->
  the matching suppression here too (other drop reasons are only recorded)
- delivered, open, click -> recorded only

An event that is malformed (a field of the wrong type, a time out of range, an id no column holds)
is skipped and counted, in its own savepoint: the batch is signed as a whole, and SendGrid would
retry all of it forever if one bad event failed the request. A database that cannot be reached
(OperationalError, InterfaceError) is not a bad event: it fails the request (5xx), so SendGrid
retries the batch later and nothing is lost.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from channels.consent import record_consent, suppress
from channels.feedback import record_delivery_event

SIGNATURE_HEADER = EventWebhookHeader.SIGNATURE
TIMESTAMP_HEADER = EventWebhookHeader.TIMESTAMP
DROP_REASONS = {
    "bounced address": "hard_bounce",
    "spam reporting address": "spam_complaint",
    "invalid": "invalid_contact",
}
log = logging.getLogger("loyalflow.webhooks")
RECORDED = {"delivered", "bounce", "dropped", "spamreport", "unsubscribe", "open", "click"}


class SendGridVerifier:
    def __init__(self, public_key_b64: str) -> None:
        self.helper = EventWebhook()
        try:
            self.key = self.helper.convert_public_key_to_ecdsa(public_key_b64)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise ValueError(f"LOYALFLOW_SENDGRID_WEBHOOK_PUBLIC_KEY is not an EC public key: {exc}") from None

    def verify(self, raw_body: bytes, signature: str, timestamp: str) -> bool:
        try:
            payload = raw_body.decode("utf-8")
            base64.b64decode(signature, validate=True)
        except (UnicodeDecodeError, binascii.Error, ValueError):
            return False
        return bool(self.helper.verify_signature(payload, signature, timestamp, self.key))


MAX_ID = 2**63 - 1  # the ledger and recipient id columns are 64-bit
EARLIEST, LATEST = 946684800, 4102444800  # 2000-01-01 .. 2100-01-01: an event time outside is malformed


class MalformedEvent(ValueError):
    """One event of a signed batch that cannot be applied; the batch goes on without it."""


@dataclass(frozen=True, slots=True)
class SendGridEvent:
    kind: str
    occurred_at: datetime
    event_id: str | None
    message_id: str | None
    ledger_id: int | None
    recipient_id: int | None
    recipient_kind: str
    address: str | None
    bounce_type: str
    drop_reason: str
    detail: dict[str, str]


def _id(event: dict[str, Any], name: str) -> int | None:
    value = event.get(name)
    if value is None or value == "":
        return None
    text = str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= MAX_ID:
        raise MalformedEvent(f"{name} is not an id")
    return int(text)


def _text(event: dict[str, Any], name: str, limit: int = 512) -> str | None:
    value = event.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)) or len(str(value)) > limit or "\x00" in str(value):
        raise MalformedEvent(f"{name} is not a short string")
    return str(value)


def parse_event(event: Any, received_at: datetime) -> SendGridEvent | None:
    """The event's parts, None for an event kind we do not record; MalformedEvent for a broken one."""
    if not isinstance(event, dict):
        raise MalformedEvent("event is not an object")
    name = event.get("event")
    if not isinstance(name, str):
        raise MalformedEvent("event has no name")
    if name not in RECORDED | {"group_unsubscribe"}:
        return None
    stamp = event.get("timestamp")
    if stamp is None:
        occurred = received_at
    elif isinstance(stamp, int) and not isinstance(stamp, bool) and EARLIEST <= stamp <= LATEST:
        occurred = datetime.fromtimestamp(stamp, timezone.utc)
    else:
        raise MalformedEvent("timestamp out of range")
    kind = _text(event, "recipient_kind")
    return SendGridEvent(
        kind="unsubscribe" if name == "group_unsubscribe" else name,
        occurred_at=occurred,
        event_id=_text(event, "sg_event_id", 100),
        message_id=(_text(event, "sg_message_id", 200) or "").split(".")[0] or None,
        ledger_id=_id(event, "ledger_id"),
        recipient_id=_id(event, "recipient_id"),
        recipient_kind=kind if kind in ("member", "staff") else "member",
        address=_text(event, "email"),
        bounce_type=_text(event, "type") or "bounce",
        drop_reason=(_text(event, "reason", 2000) or "").strip().lower(),
        detail={k: str(event[k]) for k in ("type", "status", "journey", "step") if isinstance(event.get(k), (str, int))},
    )


@dataclass(slots=True)
class BatchOutcome:
    received: int = 0
    new: int = 0
    skipped: int = 0
    """Malformed events: not applied, counted, and the rest of the batch applied anyway."""


def apply_events(session: Session, events: Sequence[Any], received_at: datetime) -> BatchOutcome:
    """Record each event once (by sg_event_id) and apply its consequences, each in its own savepoint
    so that one event the database refuses does not undo the others."""
    outcome = BatchOutcome(received=len(events))
    for raw in events:
        try:
            event = parse_event(raw, received_at)
            if event is None:
                continue
            with session.begin_nested():
                outcome.new += _apply(session, event)
        except (OperationalError, InterfaceError):
            raise  # the database is unavailable, not the event bad: a 5xx makes SendGrid retry the batch
        except Exception as exc:  # noqa: BLE001 - one malformed event is skipped, never the batch
            outcome.skipped += 1
            log.warning("skipped a malformed SendGrid event: %s", type(exc).__name__ if not isinstance(exc, MalformedEvent) else exc)
    return outcome


def _apply(session: Session, event: SendGridEvent) -> int:
    fresh = record_delivery_event(
        session,
        provider="sendgrid",
        event=event.kind,
        occurred_at=event.occurred_at,
        ledger_id=event.ledger_id,
        provider_message_id=event.message_id,
        provider_event_id=f"sendgrid:{event.event_id}" if event.event_id else None,
        detail=event.detail or None,
    )
    if not fresh:
        return 0
    kind, address, occurred = event.kind, event.address, event.occurred_at
    if kind == "bounce" and event.bounce_type == "bounce" and address:
        suppress(session, channel="email", address=address, reason="hard_bounce", source="sendgrid", at=occurred)
    elif kind == "spamreport" and address:
        suppress(session, channel="email", address=address, reason="spam_complaint", source="sendgrid", at=occurred)
    elif kind == "dropped" and address:
        reason = DROP_REASONS.get(event.drop_reason)
        if reason is not None:
            suppress(session, channel="email", address=address, reason=reason, source="sendgrid", at=occurred)
    if kind in ("spamreport", "unsubscribe"):
        if event.recipient_id is not None:
            record_consent(
                session, recipient_kind=event.recipient_kind, recipient_id=event.recipient_id, channel="email",
                purpose="marketing", action="opt_out", source=f"sendgrid_{kind}", occurred_at=occurred,
                evidence=f"sendgrid event {event.event_id or '?'}",
            )
        elif kind == "unsubscribe" and address:
            suppress(session, channel="email", address=address, reason="unsubscribed", source="sendgrid", at=occurred)
    return 1
