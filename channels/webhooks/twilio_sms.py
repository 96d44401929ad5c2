"""Twilio status callbacks and inbound SMS keywords.

Keywords follow Twilio's Advanced Opt-Out defaults: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT
opt out (the number is suppressed and marketing SMS consent withdrawn); START, YES, UNSTOP opt
back in (the STOP suppression lifted, marketing SMS consent given); HELP gets an answer. Twilio
itself confirms opt-out and opt-in to the sender, so those get an empty TwiML response.
"""

from __future__ import annotations

from datetime import datetime
from xml.sax.saxutils import escape

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from audiences.models import Member, Staff
from channels.consent import record_consent, suppress
from channels.contacts import normalise
from channels.feedback import record_delivery_event
from channels.models import Channel, Suppression, SuppressionReason

OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN = frozenset({"START", "YES", "UNSTOP"})
HELP = frozenset({"HELP", "INFO"})
STATUS_EVENTS = {"sent": "sent", "delivered": "delivered", "undelivered": "undelivered", "failed": "failed"}
# delivery errors that mean the number will never take SMS from us
PERMANENT_ERRORS = {"21610": "stop", "30005": "invalid_contact", "30006": "invalid_contact"}


def twiml(message: str | None = None) -> str:
    inner = f"<Message>{escape(message)}</Message>" if message else ""
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>'


def keyword(body: str) -> str:
    return body.strip().strip(".!").upper()


def _recipients_with_phone(session: Session, phone: str) -> list[tuple[str, int]]:
    members = session.scalars(select(Member.id).where(Member.phone == phone)).all()
    staff = session.scalars(select(Staff.id).where(Staff.phone == phone)).all()
    return [("member", i) for i in members] + [("staff", i) for i in staff]


def handle_inbound(session: Session, params: dict[str, str], now: datetime, help_text: str) -> str:
    """Apply an inbound message's keyword; return the TwiML answer."""
    word = keyword(params.get("Body", ""))
    phone = normalise("sms", params.get("From", ""))
    evidence = f"inbound sms {params.get('MessageSid', '?')}: {word}"
    if word in OPT_OUT:
        suppress(session, channel="sms", address=phone, reason="stop", source="sms_keyword", at=now)
        for kind, rid in _recipients_with_phone(session, phone):
            record_consent(session, recipient_kind=kind, recipient_id=rid, channel="sms", purpose="marketing",
                           action="opt_out", source="sms_keyword", occurred_at=now, evidence=evidence)
        return twiml()
    if word in OPT_IN:
        session.execute(
            delete(Suppression).where(
                Suppression.channel == Channel.sms, Suppression.address == phone, Suppression.reason == SuppressionReason.stop
            )
        )
        for kind, rid in _recipients_with_phone(session, phone):
            record_consent(session, recipient_kind=kind, recipient_id=rid, channel="sms", purpose="marketing",
                           action="opt_in", source="sms_keyword", occurred_at=now, evidence=evidence)
        return twiml()
    if word in HELP:
        return twiml(help_text)
    return twiml()


def handle_status(session: Session, params: dict[str, str], ledger_id: int | None, now: datetime) -> None:
    status = params.get("MessageStatus") or params.get("SmsStatus") or ""
    event = STATUS_EVENTS.get(status)
    if event is None:
        return  # queued/accepted/sending: nothing new
    error = params.get("ErrorCode") or None
    record_delivery_event(
        session, provider="twilio", event=event, occurred_at=now, ledger_id=ledger_id,
        provider_message_id=params.get("MessageSid"),
        provider_event_id=f"twilio:{params.get('MessageSid')}:{status}" if params.get("MessageSid") else None,
        detail={"error_code": error} if error else None,
    )
    if error in PERMANENT_ERRORS and params.get("To"):
        suppress(session, channel="sms", address=params["To"], reason=PERMANENT_ERRORS[error], source="twilio", at=now)
