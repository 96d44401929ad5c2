"""The embedded default: every message becomes a file a person can open.

Email: one RFC 5322 .eml per ledger id (text and HTML parts, every header a provider would get,
List-Unsubscribe on marketing), written to a temporary name then renamed, so a reader never sees
half a file and a second write of the same ledger id replaces rather than duplicates.
SMS and push: one JSON line each in sms.jsonl / push.jsonl, appended under an exclusive file lock
in a single write, so concurrent writers (threads or processes) never interleave lines.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path

from channels.adapters.base import DeliveryResult, DeliveryStatus, OutgoingMessage, unsubscribe_headers
from channels.settings import ChannelSettings
from templates.rendered import RenderedEmail, RenderedPush, RenderedSms


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _header(value: str) -> str | Header:
    return value if value.isascii() else Header(value, "utf-8")


class OutboxAdapter:
    provider = "outbox"

    def __init__(self, settings: ChannelSettings, clock: Callable[[], datetime] = utc_now) -> None:
        self.settings = settings
        self.root = Path(settings.outbox_dir)
        self._clock = clock

    def send(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        expected = {"email": RenderedEmail, "sms": RenderedSms, "push": RenderedPush}
        for message in messages:  # checked first: a malformed batch writes nothing
            kind = expected.get(message.channel)
            if kind is not None and not isinstance(message.content, kind):
                raise TypeError(f"ledger {message.ledger_id}: {message.channel} channel needs a {kind.__name__}")
        results = []
        for message in messages:
            if message.channel == "email":
                provider_id = self._write_email(message)
            elif message.channel in ("sms", "push"):
                provider_id = self._append_line(message)
            else:
                results.append(DeliveryResult(message.ledger_id, DeliveryStatus.permanent, None, "channel", f"unknown channel {message.channel!r}"))
                continue
            results.append(DeliveryResult(message.ledger_id, DeliveryStatus.accepted, provider_id))
        return results

    def build_email(self, message: OutgoingMessage) -> Message:
        """multipart/alternative with a text and an HTML part, built with the compat32 MIME classes:
        the modern EmailMessage policy parses every header through its registry, ~7 ms a message,
        which made the default adapter the slowest part of a run. Non-ASCII headers are RFC 2047."""
        content = message.content
        if not isinstance(content, RenderedEmail):
            raise TypeError(f"ledger {message.ledger_id}: email channel needs a RenderedEmail")
        email = MIMEMultipart("alternative")
        email["From"] = formataddr((self.settings.email_from_name, self.settings.email_from))
        email["To"] = message.to
        email["Subject"] = _header(content.subject)
        email["Date"] = format_datetime(self._clock())
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

    def _write_email(self, message: OutgoingMessage) -> str:
        email = self.build_email(message)
        folder = self.root / "email"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{message.ledger_id:012d}.eml"
        fd, temp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".eml")
        with os.fdopen(fd, "wb") as handle:
            handle.write(email.as_bytes())
        os.replace(temp, target)
        return str(email["Message-ID"]).strip().strip("<>")

    def _append_line(self, message: OutgoingMessage) -> str:
        content = message.content
        record: dict[str, object] = {
            "ledger_id": message.ledger_id,
            "at": self._clock().isoformat(),
            "to": message.to,
            "journey": message.journey,
            "step": message.step,
            "purpose": message.purpose,
        }
        if message.channel == "sms":
            if not isinstance(content, RenderedSms):
                raise TypeError(f"ledger {message.ledger_id}: sms channel needs a RenderedSms")
            record |= {"from": self.settings.sms_from, "text": content.text, "encoding": content.encoding, "segments": content.segments}
        else:
            if not isinstance(content, RenderedPush):
                raise TypeError(f"ledger {message.ledger_id}: push channel needs a RenderedPush")
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
