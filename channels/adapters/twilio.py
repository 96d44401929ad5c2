"""Twilio SMS through the official `twilio` SDK, its API base URL from settings.

Outcomes: 201 -> accepted (the message SID kept); 21211 invalid number and 21614 not a mobile ->
permanent + suppression invalid_contact; 21610 the recipient replied STOP -> permanent +
suppression stop; other 4xx -> permanent; 401/403 -> configuration failure; 429, 5xx and
connections refused before the request left -> retry (Retry-After honoured, read from the SDK's
last response on this thread); a read timeout or a connection lost after the request was sent ->
unknown (the message may exist at Twilio).

`lookup` answers for an unknown outcome from Twilio's own records: the Messages list filtered by
To and DateSent (from the day of the hand-over), matched by sender, creation time (not before the
hand-over, less `LOOKUP_SKEW`) and body fingerprint (channels.settlement: letters and digits
only, so Twilio's smart encoding of quotes and dashes does not hide a match). The status callback URL carries the ledger
id, so Twilio's status events join back too (channels.settlement reads both).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from channels.adapters.base import Evidence, OutgoingMessage, ProviderEvidence
from channels.adapters.dispatch import Attempt, AttemptKind, answer_lost, classify_http, not_sent, reset_delay
from channels.adapters.provider import ProviderAdapter
from channels.errors import MessageRejected
from channels.settlement import fingerprint_text
from templates.rendered import RenderedSms

PERMANENT_CODES: dict[int, tuple[str, str]] = {
    21211: ("invalid_contact", "invalid 'To' phone number"),
    21614: ("invalid_contact", "'To' number is not a mobile number"),
    21610: ("stop", "the recipient replied STOP to this sender"),
}
LOOKUP_SKEW = timedelta(minutes=5)
"""Clock difference allowed between our hand-over instant and Twilio's date_created."""
LOOKUP_LIMIT = 500


class _RecordingHttpClient(TwilioHttpClient):
    """The SDK's client, keeping the last response so 429 reset headers can be honoured."""

    last: Response | None = None

    def request(self, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        self.last = None
        self.last = super().request(*args, **kwargs)
        return self.last


def transport_attempt(exc: requests.RequestException) -> Attempt:
    """requests' exceptions, split by whether the request can have reached Twilio."""
    if isinstance(exc, requests.ConnectTimeout):
        return not_sent(exc)
    if isinstance(exc, requests.ReadTimeout):
        return answer_lost(exc)
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else None
        cause = getattr(reason, "reason", reason)  # urllib3's MaxRetryError(reason=NewConnectionError(...))
        if type(cause).__name__ in ("NewConnectionError", "ConnectTimeoutError", "NameResolutionError"):
            return not_sent(exc)
        return answer_lost(exc)  # aborted or reset mid-exchange: it may have arrived
    return not_sent(exc)  # invalid URL, too many redirects, ...: before anything was created


class TwilioAdapter(ProviderAdapter):
    provider = "twilio"
    required = ("twilio_account_sid", "twilio_auth_token", "sms_from")

    def sender(self) -> str:
        return self.settings.sms_from or ""

    def rate(self) -> float:
        return self.settings.sms_rate_per_second

    def _client(self) -> tuple[Client, _RecordingHttpClient]:
        pair = getattr(self._local, "pair", None)
        if pair is None:
            http = _RecordingHttpClient(timeout=self.settings.request_timeout_seconds)
            client = Client(
                self.settings.twilio_account_sid,
                self.settings.secret("twilio_auth_token"),
                http_client=http,
                environment={},
            )
            client.api.base_url = self.settings.twilio_base_url.rstrip("/")
            pair = self._local.pair = (client, http)
        return pair

    def status_callback(self, message: OutgoingMessage) -> str:
        base = self.settings.public_base_url.rstrip("/")
        return f"{base}/webhooks/twilio/status?{urlencode({'ledger_id': message.ledger_id})}"

    def _sender_arg(self) -> dict[str, str]:
        sender = self.settings.sms_from or ""
        return {"messaging_service_sid": sender} if sender.startswith("MG") else {"from_": sender}

    def prepare(self, message: OutgoingMessage) -> str:
        if not isinstance(message.content, RenderedSms):
            raise MessageRejected(message.ledger_id, "wrong_content", "sms channel needs a RenderedSms")
        if not message.to or not message.to.isascii():
            raise MessageRejected(message.ledger_id, "invalid_contact", "phone number is not E.164")
        return message.content.text

    def attempt(self, message: OutgoingMessage, body: str) -> Attempt:
        client, http = self._client()
        try:
            created = client.messages.create(
                to=message.to, body=body, status_callback=self.status_callback(message), **self._sender_arg()
            )
        except TwilioRestException as exc:
            headers = dict(http.last.headers or {}) if http.last is not None else {}
            return self._classify(exc, headers)
        except requests.RequestException as exc:
            return transport_attempt(exc)
        return Attempt(AttemptKind.accepted, provider_message_id=created.sid)

    def _classify(self, exc: TwilioRestException, headers: dict[str, str]) -> Attempt:
        status, code = exc.status, exc.code
        if code in PERMANENT_CODES:
            suppression, reason = PERMANENT_CODES[code]
            return Attempt(AttemptKind.permanent, error_code=str(code), reason=reason, http_status=status,
                           suppression=suppression)
        return classify_http(status, str(code or status), f"Twilio error {code}", reset_delay(headers, self._wall()))

    def lookup(self, to: str, fingerprint: str, since: datetime) -> ProviderEvidence:
        """Is a message to `to` with this body fingerprint (channels.settlement.fingerprint) in
        Twilio's records, created after `since` less LOOKUP_SKEW? Accepted (with its SID), absent
        (the whole window was searched), or none when the lookup failed or could not search it all."""
        start = since.astimezone(UTC) - LOOKUP_SKEW
        day = datetime(start.year, start.month, start.day, tzinfo=UTC)  # Twilio filters DateSent by day
        sender = self.settings.sms_from or ""
        client, _ = self._client()
        try:
            found = client.messages.list(to=to, date_sent_after=day, limit=LOOKUP_LIMIT, page_size=100)
        except (TwilioRestException, requests.RequestException) as exc:
            return ProviderEvidence(Evidence.none, source=f"twilio lookup failed: {type(exc).__name__}")
        if len(found) >= LOOKUP_LIMIT:  # not the whole window: absence would not be proven
            return ProviderEvidence(Evidence.none, source="twilio lookup: too many messages to search")
        for item in found:
            created = item.date_created or item.date_sent
            if created is not None and created.astimezone(UTC) < start:
                continue
            if not sender.startswith("MG") and item.from_ not in (None, sender):
                continue
            if str(item.direction or "").startswith("outbound") and fingerprint_text(item.body or "") == fingerprint:
                return ProviderEvidence(Evidence.accepted, item.sid, "twilio messages list")
        return ProviderEvidence(Evidence.absent, source="twilio messages list")
