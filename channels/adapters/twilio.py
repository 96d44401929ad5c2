"""Twilio SMS through the official `twilio` SDK, its API base URL from settings.

Outcomes: 201 -> accepted (the message SID kept); 21211 invalid number and 21614 not a mobile ->
permanent + suppression invalid_contact; 21610 the recipient replied STOP -> permanent +
suppression stop; other 4xx -> permanent; 401/403 -> configuration failure; 429, 5xx and network
errors -> retry (Retry-After honoured, read from the SDK's last response on this thread).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from channels.adapters.base import DeliveryResult, OutgoingMessage
from channels.adapters.dispatch import Attempt, AttemptKind, Dispatcher, RetryPolicy, reset_delay
from channels.ratelimit import TokenBucket, bucket_for
from channels.settings import ChannelSettings
from templates.rendered import RenderedSms

PERMANENT_CODES: dict[int, tuple[str, str]] = {
    21211: ("invalid_contact", "invalid 'To' phone number"),
    21614: ("invalid_contact", "'To' number is not a mobile number"),
    21610: ("stop", "the recipient replied STOP to this sender"),
}


class _RecordingHttpClient(TwilioHttpClient):
    """The SDK's client, keeping the last response so 429 reset headers can be honoured."""

    last: Response | None = None

    def request(self, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        self.last = None
        self.last = super().request(*args, **kwargs)
        return self.last


class TwilioAdapter:
    provider = "twilio"

    def __init__(
        self,
        settings: ChannelSettings,
        *,
        bucket: TokenBucket | None = None,
        sleep: Callable[[float], None] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        settings.require("twilio_account_sid", "twilio_auth_token", "sms_from")
        self.settings = settings
        self._local = threading.local()
        self._wall = wall_clock
        self.dispatcher = Dispatcher(
            self.provider,
            bucket or bucket_for(self.provider, settings.sms_from or "", settings.sms_rate_per_second),
            RetryPolicy(settings.max_attempts, settings.backoff_base_seconds, settings.backoff_max_seconds),
            settings.concurrency,
            sleep,
        )

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

    def send(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        for message in messages:  # checked before the first request: a malformed batch sends nothing
            if not isinstance(message.content, RenderedSms):
                raise TypeError(f"ledger {message.ledger_id}: sms channel needs a RenderedSms")
        return self.dispatcher.run(messages, self._attempt)

    def _attempt(self, message: OutgoingMessage) -> Attempt:
        content = message.content
        assert isinstance(content, RenderedSms)
        client, http = self._client()
        sender = self.settings.sms_from or ""
        sender_arg = {"messaging_service_sid": sender} if sender.startswith("MG") else {"from_": sender}
        try:
            created = client.messages.create(
                to=message.to, body=content.text, status_callback=self.status_callback(message), **sender_arg
            )
        except TwilioRestException as exc:
            headers = dict(http.last.headers or {}) if http.last is not None else {}
            return self._classify(exc, headers)
        except requests.RequestException as exc:  # retried; see the SendGrid adapter on timeouts
            return Attempt(AttemptKind.retry, error_code="network", reason=f"network error: {type(exc).__name__}")
        return Attempt(AttemptKind.accepted, provider_message_id=created.sid)

    def _classify(self, exc: TwilioRestException, headers: dict[str, str]) -> Attempt:
        status, code = exc.status, exc.code
        if code in PERMANENT_CODES:
            suppression, reason = PERMANENT_CODES[code]
            return Attempt(AttemptKind.permanent, error_code=str(code), reason=reason, http_status=status, suppression=suppression)
        if status in (401, 403):
            return Attempt(AttemptKind.config, error_code=str(code or status), reason=f"Twilio error {code}", http_status=status)
        if status == 429 or status >= 500:
            return Attempt(
                AttemptKind.retry,
                error_code=str(code or status),
                reason=f"HTTP {status}",
                retry_after=reset_delay(headers, self._wall()),
                http_status=status,
            )
        return Attempt(AttemptKind.permanent, error_code=str(code or status), reason=f"Twilio error {code}", http_status=status)
