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
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader
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


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def apply_events(session: Session, events: Sequence[Any], received_at: datetime) -> int:
    """Record each event once (by sg_event_id) and apply its consequences; returns how many were new."""
    new = 0
    for event in events:
        if not isinstance(event, dict) or event.get("event") not in RECORDED | {"group_unsubscribe"}:
            continue
        kind = "unsubscribe" if event["event"] == "group_unsubscribe" else str(event["event"])
        ts = _int(event.get("timestamp"))
        occurred = datetime.fromtimestamp(ts, timezone.utc) if ts is not None else received_at
        message_id = str(event.get("sg_message_id") or "").split(".")[0] or None
        fresh = record_delivery_event(
            session,
            provider="sendgrid",
            event=kind,
            occurred_at=occurred,
            ledger_id=_int(event.get("ledger_id")),
            provider_message_id=message_id,
            provider_event_id=f"sendgrid:{event['sg_event_id']}" if event.get("sg_event_id") else None,
            detail={k: event[k] for k in ("type", "status", "journey", "step") if k in event},
        )
        if not fresh:
            continue
        new += 1
        address = event.get("email")
        recipient_id = _int(event.get("recipient_id"))
        recipient_kind = event.get("recipient_kind") if event.get("recipient_kind") in ("member", "staff") else "member"
        evidence = f"sendgrid event {event.get('sg_event_id', '?')}"
        if kind == "bounce" and event.get("type", "bounce") == "bounce" and address:
            suppress(session, channel="email", address=address, reason="hard_bounce", source="sendgrid", at=occurred)
        elif kind == "spamreport" and address:
            suppress(session, channel="email", address=address, reason="spam_complaint", source="sendgrid", at=occurred)
        elif kind == "dropped" and address:
            reason = DROP_REASONS.get(str(event.get("reason", "")).strip().lower())
            if reason is not None:
                suppress(session, channel="email", address=address, reason=reason, source="sendgrid", at=occurred)
        if kind in ("spamreport", "unsubscribe"):
            if recipient_id is not None:
                record_consent(
                    session, recipient_kind=recipient_kind, recipient_id=recipient_id, channel="email",
                    purpose="marketing", action="opt_out", source=f"sendgrid_{kind}", occurred_at=occurred,
                    evidence=evidence,
                )
            elif kind == "unsubscribe" and address:
                suppress(session, channel="email", address=address, reason="unsubscribed", source="sendgrid", at=occurred)
    return new
