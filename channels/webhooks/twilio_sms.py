"""Twilio status callbacks and inbound SMS keywords.

Keywords follow Twilio's Advanced Opt-Out defaults: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT,
REVOKE, OPTOUT opt out (the number is suppressed and marketing SMS consent withdrawn for everyone
whose number it is); START, YES, UNSTOP opt back in; HELP and INFO get an answer. Twilio itself
confirms opt-out and opt-in to the sender, so those get an empty TwiML response.

A number is matched to members and staff by E.164, however theirs is written ("+1 (201) 555-0188").

Opting back in, on a phone several people share: START lifts the number's STOP suppression and
restores marketing SMS consent only for those whose consent STOP had taken away, that is whose
latest SMS marketing event is an opt-out by SMS keyword that followed an opt-in. Someone who never
opted in, or who opted out another way, is not opted in by whoever holds the phone.
"""

from __future__ import annotations

from datetime import datetime
from xml.sax.saxutils import escape

import phonenumbers
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from audiences.models import Member, Staff
from channels.consent import record_consent, suppress
from channels.contacts import normalise
from channels.feedback import record_delivery_event
from channels.models import ConsentAction, ConsentEvent, Suppression, SuppressionReason
from channels.surveys import answer_sms_reply, parse_reply
from channels.webhooks.page_text import survey_text
from templates.vocabulary import Channel, Purpose, RecipientKind

OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN = frozenset({"START", "YES", "UNSTOP"})
HELP = frozenset({"HELP", "INFO"})
KEYWORD_SOURCE = "sms_keyword"
STATUS_EVENTS = {"sent": "sent", "delivered": "delivered", "undelivered": "undelivered", "failed": "failed"}
# delivery errors that mean the number will never take SMS from us
PERMANENT_ERRORS = {"21610": "stop", "30005": "invalid_contact", "30006": "invalid_contact"}
SEPARATORS = " -().\t/"


def twiml(message: str | None = None) -> str:
    inner = f"<Message>{escape(message)}</Message>" if message else ""
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>'


def keyword(body: str) -> str:
    return body.strip().strip(".!").upper()


def _digits_only(column):  # type: ignore[no-untyped-def]
    """The column without the separators people write numbers with (the SQL side of the match)."""
    for char in SEPARATORS:
        column = func.replace(column, char, "")
    return column


def recipients_with_phone(session: Session, e164: str) -> list[tuple[str, int]]:
    """Members and staff whose number is `e164`, however it is written: candidates ending in the
    national number are found in SQL, then each is confirmed by its own E.164 form."""
    try:
        national = str(phonenumbers.parse(e164, None).national_number)
    except phonenumbers.NumberParseException:
        national = ""
    found: list[tuple[str, int]] = []
    for kind, model, has_country in (("member", Member, True), ("staff", Staff, False)):
        columns = [model.id, model.phone, model.country] if has_country else [model.id, model.phone]
        if national:
            where = _digits_only(model.phone).like(f"%{national}")
        else:
            where = model.phone == e164
        for row in session.execute(select(*columns).where(where)):
            country = row[2] if has_country else None
            if row[1] and normalise("sms", row[1], country) == e164:
                found.append((kind, row[0]))
    return found


def _withdrawn_by_stop(session: Session, recipients: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Those whose latest SMS marketing events are keyword opt-outs (one STOP or several) right
    after an opt-in: STOP took their consent, so START gives it back."""
    keep = []
    for kind, rid in recipients:
        history = session.execute(
            select(ConsentEvent.action, ConsentEvent.source)
            .where(ConsentEvent.recipient_kind == RecipientKind(kind), ConsentEvent.recipient_id == rid,
                   ConsentEvent.channel == Channel.sms, ConsentEvent.purpose == Purpose.marketing)
            .order_by(ConsentEvent.occurred_at.desc(), ConsentEvent.id.desc())
            .limit(50)
        ).all()
        stops = 0
        for action, source in history:
            if action is ConsentAction.opt_out and source == KEYWORD_SOURCE:
                stops += 1
                continue
            if stops and action is ConsentAction.opt_in:
                keep.append((kind, rid))
            break
    return keep


def handle_inbound(session: Session, params: dict[str, str], now: datetime, help_text: str) -> str:
    """Apply an inbound message's keyword; return the TwiML answer."""
    word = keyword(params.get("Body", ""))
    phone = normalise("sms", params.get("From", ""))
    evidence = f"inbound sms {params.get('MessageSid', '?')}: {word}"
    if word in OPT_OUT:
        suppress(session, channel="sms", address=phone, reason="stop", source=KEYWORD_SOURCE, at=now)
        for kind, rid in recipients_with_phone(session, phone):
            record_consent(session, recipient_kind=kind, recipient_id=rid, channel="sms", purpose="marketing",
                           action="opt_out", source=KEYWORD_SOURCE, occurred_at=now, evidence=evidence)
        return twiml()
    if word in OPT_IN:
        session.execute(
            delete(Suppression).where(
                Suppression.channel == Channel.sms, Suppression.address == phone, Suppression.reason == SuppressionReason.stop
            )
        )
        for kind, rid in _withdrawn_by_stop(session, recipients_with_phone(session, phone)):
            record_consent(session, recipient_kind=kind, recipient_id=rid, channel="sms", purpose="marketing",
                           action="opt_in", source=KEYWORD_SOURCE, occurred_at=now, evidence=evidence)
        return twiml()
    if word in HELP:
        return twiml(help_text)
    return twiml(survey_reply(session, params.get("Body", ""), phone, now))  # "reply 0-10" (channels/surveys.py)


def survey_reply(session: Session, body: str, phone: str, now: datetime) -> str | None:
    """A score ("8", "9 great staff") answers the latest survey SMS sent to this number; the answer
    thanks them in their language. Anything else gets no answer, as before."""
    if parse_reply(body) is None:
        return None
    reply = answer_sms_reply(session, recipients_with_phone(session, phone), body, now)
    if reply is None:
        return None
    model = Member if reply.invite.recipient_kind == "member" else Staff
    person = session.get(model, reply.invite.recipient_id)
    words = survey_text(person.locale if person is not None else None)
    if reply.answer is None:
        return words.sms_out_of_range.format(min=reply.invite.scale_min, max=reply.invite.scale_max)
    return words.sms_thanks


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
