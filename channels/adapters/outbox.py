"""The embedded default: every message becomes a file a person can open.

Email: one RFC 5322 .eml per ledger id (text and HTML parts, every header a provider would get,
List-Unsubscribe on marketing), written to a temporary name then renamed, so a reader never sees
half a file and a second write of the same ledger id replaces rather than duplicates.
SMS and push: one JSON line each in sms.jsonl / push.jsonl, appended under an exclusive file lock
in a single write, so concurrent writers (threads or processes) never interleave lines.
One recipient's message that cannot be written (a header, an address) is that recipient's failure
with a reason; the rest of the batch is written. Headers: member text cleaned of control characters
and RFC 2047-encoded when not ASCII; the To domain in IDNA, a non-ASCII local part written as
SMTPUTF8 (RFC 6532). Date: the engine's send instant (`created_at`), so a simulated run dates its
mail in simulated time.
"""

from __future__ import annotations

import base64
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTPUTF8
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path

from channels.adapters.base import DeliveryResult, DeliveryStatus, OutgoingMessage, unsubscribe_headers
from channels.adapters.headers import clean_text, encode_address
from channels.errors import MessageRejected
from channels.settings import ChannelSettings
from templates.rendered import RenderedEmail, RenderedPush, RenderedSms


log = logging.getLogger("loyalflow.channels")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _header(value: str, utf8: bool = False) -> str | Header:
    """A cleaned header value; RFC 2047-encoded when not ASCII, unless the message is SMTPUTF8."""
    value = clean_text(value)
    return value if utf8 or value.isascii() else Header(value, "utf-8")


def _boundary(ledger_id: int) -> str:
    return f"===============loyalflow{ledger_id:012d}=="


def _folded(name: str, value: str) -> str:
    """A header value as the email package writes it: as is when short ASCII, else RFC 2047 words
    (UTF-8) folded at 78 columns."""
    if value.isascii() and len(name) + 2 + len(value) <= 78:
        return value
    return Header(value, "utf-8" if not value.isascii() else "us-ascii", header_name=name).encode(linesep="\n")


class OutboxAdapter:
    provider = "outbox"

    def __init__(self, settings: ChannelSettings, clock: Callable[[], datetime] = utc_now) -> None:
        self.settings = settings
        self.root = Path(settings.outbox_dir)
        self._clock = clock

    def send(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        expected = {"email": RenderedEmail, "sms": RenderedSms, "push": RenderedPush}
        results = []
        for message in messages:
            kind = expected.get(message.channel)
            if kind is None:
                results.append(DeliveryResult(message.ledger_id, DeliveryStatus.permanent, None, "channel",
                                              "unknown channel"))
                continue
            try:
                if not isinstance(message.content, kind):
                    raise MessageRejected(message.ledger_id, "wrong_content", f"{message.channel} needs {kind.__name__}")
                if message.channel == "email":
                    provider_id = self._write_email(message)
                else:
                    provider_id = self._append_line(message)
            except MessageRejected as exc:
                results.append(DeliveryResult(message.ledger_id, DeliveryStatus.permanent, None, exc.code, exc.code))
                continue
            except Exception as exc:  # written nothing (files are renamed into place last): its failure only
                log.error("outbox: ledger %s: %s while writing", message.ledger_id, type(exc).__name__)
                results.append(DeliveryResult(message.ledger_id, DeliveryStatus.permanent, None, "outbox_error",
                                              type(exc).__name__))
                continue
            results.append(DeliveryResult(message.ledger_id, DeliveryStatus.accepted, provider_id))
        return results

    def _now(self, message: OutgoingMessage) -> datetime:
        return message.created_at or self._clock()

    def build_email(self, message: OutgoingMessage) -> Message:
        """multipart/alternative with a text and an HTML part, built with the compat32 MIME classes:
        the modern EmailMessage policy parses every header through its registry, ~7 ms a message,
        which made the default adapter the slowest part of a run. Non-ASCII headers are RFC 2047."""
        content = message.content
        if not isinstance(content, RenderedEmail):
            raise MessageRejected(message.ledger_id, "wrong_content", "email channel needs a RenderedEmail")
        email = MIMEMultipart("alternative")
        email["From"] = formataddr((clean_text(self.settings.email_from_name), self.settings.email_from), "utf-8")
        to = encode_address(message.ledger_id, message.to, smtputf8=True)
        utf8 = not to.isascii()  # an SMTPUTF8 message (RFC 6532): every header may be UTF-8
        email["To"] = to
        email["Subject"] = _header(content.subject, utf8)
        email["Date"] = format_datetime(self._now(message))
        email["Message-ID"] = make_msgid(f"ledger-{message.ledger_id}", domain=self.settings.email_from.split("@")[-1])
        email["X-Loyalflow-Ledger-Id"] = str(message.ledger_id)
        email["X-Loyalflow-Journey"] = message.journey
        email["X-Loyalflow-Step"] = message.step
        email["X-Loyalflow-Purpose"] = message.purpose
        if message.categories:
            email["X-Loyalflow-Categories"] = ", ".join(message.categories)
        for name, value in unsubscribe_headers(message).items():
            email[name] = value
        email.attach(MIMEText(content.text, "plain", "utf-8"))
        email.attach(MIMEText(content.html, "html", "utf-8"))
        return email

    def email_bytes(self, message: OutgoingMessage) -> tuple[bytes, str]:
        """The .eml and its Message-ID. Written directly when every header is ASCII (the usual case):
        the same message `build_email` describes, without the email package re-parsing and re-folding
        18 headers (about two thirds of the outbox's time); an SMTPUTF8 message goes the long way."""
        content = message.content
        if not isinstance(content, RenderedEmail):
            raise MessageRejected(message.ledger_id, "wrong_content", "email channel needs a RenderedEmail")
        to = encode_address(message.ledger_id, message.to, smtputf8=True)
        if not to.isascii():  # an SMTPUTF8 address (RFC 6532) is written as UTF-8 headers
            email = self.build_email(message)
            return email.as_bytes(policy=SMTPUTF8), str(email["Message-ID"]).strip().strip("<>")
        message_id = make_msgid(f"ledger-{message.ledger_id}", domain=self.settings.email_from.split("@")[-1])
        headers = [
            ("Content-Type", f'multipart/alternative; boundary="{_boundary(message.ledger_id)}"'),
            ("MIME-Version", "1.0"),
            ("From", formataddr((clean_text(self.settings.email_from_name), self.settings.email_from), "utf-8")),
            ("To", to),
            ("Subject", _folded("Subject", clean_text(content.subject))),
            ("Date", format_datetime(self._now(message))),
            ("Message-ID", message_id),
            ("X-Loyalflow-Ledger-Id", str(message.ledger_id)),
            ("X-Loyalflow-Journey", message.journey),
            ("X-Loyalflow-Step", message.step),
            ("X-Loyalflow-Purpose", message.purpose),
        ]
        if message.categories:
            headers.append(("X-Loyalflow-Categories", ", ".join(message.categories)))
        headers += list(unsubscribe_headers(message).items())
        if not all(value.isascii() for _, value in headers):  # e.g. a non-ASCII step key: the long way
            email = self.build_email(message)
            return email.as_bytes(), str(email["Message-ID"]).strip().strip("<>")
        boundary = _boundary(message.ledger_id)
        out = [f"{name}: {value}\n".encode("ascii") for name, value in headers]
        out.append(b"\n")
        for subtype, body in (("plain", content.text), ("html", content.html)):
            out.append(f'--{boundary}\nContent-Type: text/{subtype}; charset="utf-8"\nMIME-Version: 1.0\n'
                       f"Content-Transfer-Encoding: base64\n\n".encode("ascii"))
            out.append(base64.encodebytes(body.encode("utf-8")))
        out.append(f"\n--{boundary}--\n".encode("ascii"))
        return b"".join(out), message_id.strip("<>")

    def _write_email(self, message: OutgoingMessage) -> str:
        data, message_id = self.email_bytes(message)
        folder = self.root / "email"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{message.ledger_id:012d}.eml"
        fd, temp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".eml")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return message_id

    def _append_line(self, message: OutgoingMessage) -> str:
        content = message.content
        record: dict[str, object] = {
            "ledger_id": message.ledger_id,
            "at": self._now(message).isoformat(),
            "to": message.to,
            "journey": message.journey,
            "step": message.step,
            "purpose": message.purpose,
        }
        if message.channel == "sms":
            if not isinstance(content, RenderedSms):
                raise MessageRejected(message.ledger_id, "wrong_content", "sms channel needs a RenderedSms")
            record |= {"from": self.settings.sms_from, "text": content.text, "encoding": content.encoding, "segments": content.segments}
        else:
            if not isinstance(content, RenderedPush):
                raise MessageRejected(message.ledger_id, "wrong_content", "push channel needs a RenderedPush")
            record |= {"title": content.title, "body": content.body, "deep_link": content.deep_link, "data": content.data}
        self.root.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        fd = os.open(self.root / f"{message.channel}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
        finally:
            os.close(fd)  # closing releases the lock
        return f"outbox-{message.channel}-{message.ledger_id}"
