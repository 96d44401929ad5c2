"""SendGrid email through the official `sendgrid` SDK (v3 Mail Send), host from settings.

Outcomes: 202 -> accepted (X-Message-Id kept); 400/413 -> permanent; 401/403 -> configuration
failure; 429 and 5xx, refused connections -> retry, honouring X-RateLimit-Reset / Retry-After;
a timeout or lost connection after the request was sent -> unknown (SendGrid has no idempotency
key, so a retry could deliver twice: the engine settles it from events first, channels.settlement).
custom_args carry the ledger id, journey, step, purpose and recipient (ids only, as strings, as
SendGrid requires) so Event Webhook events join back to the ledger and the consent record.
The To address goes with its domain in IDNA; SendGrid takes no SMTPUTF8 local part, so such an
address is that recipient's `invalid_contact`.
"""

from __future__ import annotations

import json
import logging
import urllib.error
from typing import Any

from python_http_client import exceptions as http_errors
from sendgrid import SendGridAPIClient

from channels.adapters.base import OutgoingMessage, unsubscribe_headers
from channels.adapters.dispatch import (
    Attempt,
    AttemptKind,
    answer_lost,
    classify_http,
    not_sent,
    reset_delay,
)
from channels.adapters.headers import clean_text, encode_address
from channels.adapters.keepalive import AnswerLost, KeepAliveClient
from channels.adapters.provider import ProviderAdapter
from channels.errors import MessageRejected
from channels.settings import ChannelSettings
from templates.rendered import RenderedEmail

# The SDK's HTTP client logs every request body (recipient addresses included) at DEBUG: keep it
# quiet whatever the root level is, since no personal data may reach the logs.
logging.getLogger("python_http_client.client").setLevel(logging.INFO)


def build_mail(message: OutgoingMessage, settings: ChannelSettings) -> dict[str, Any]:
    """The v3 Mail Send body as a plain dict (what the SDK's `Mail(...).get()` produced, without its
    helper objects: they cost ~90 µs a message, this a few)."""
    content = message.content
    if not isinstance(content, RenderedEmail):
        raise MessageRejected(message.ledger_id, "wrong_content", "email channel needs a RenderedEmail")
    to = encode_address(message.ledger_id, message.to, smtputf8=False)
    sender: dict[str, str] = {"email": settings.email_from}
    if name := clean_text(settings.email_from_name):
        sender["name"] = name
    body: dict[str, Any] = {
        "from": sender,
        "subject": clean_text(content.subject),
        "personalizations": [{"to": [{"email": to}]}],
        "content": [{"type": "text/plain", "value": content.text}, {"type": "text/html", "value": content.html}],
        "custom_args": {
            "ledger_id": str(message.ledger_id),
            "journey": message.journey,
            "step": message.step,
            "purpose": message.purpose,
            "recipient_kind": message.recipient_kind,
            "recipient_id": str(message.recipient_id),
        },
    }
    if headers := unsubscribe_headers(message):
        body["headers"] = headers
    if message.categories:
        body["categories"] = list(message.categories[:10])  # SendGrid allows 10
    return body


class SendGridAdapter(ProviderAdapter):
    provider = "sendgrid"

    def __init__(self, settings: ChannelSettings, **kwargs: Any) -> None:
        self._api_key = settings.secret("sendgrid_api_key")
        super().__init__(settings, **kwargs)

    def sender(self) -> str:
        return self.settings.email_from

    def rate(self) -> float:
        return self.settings.email_rate_per_second

    def _client(self) -> SendGridAPIClient:
        client = getattr(self._local, "client", None)
        if client is None:  # one SDK client per thread: its request builder keeps per-call state
            client = SendGridAPIClient(api_key=self._api_key, host=self.settings.sendgrid_base_url.rstrip("/"))
            # the SDK's client, over a kept-alive connection instead of a new one per request
            client.client = KeepAliveClient(host=client.host, request_headers=client._default_headers, version=3,
                                            timeout=self.settings.request_timeout_seconds)
            self._local.client = client
        return client

    def _mail_send(self) -> Any:
        """The SDK's `client.mail.send` (what `SendGridAPIClient.send` posts to), built once per thread."""
        endpoint = getattr(self._local, "mail_send", None)
        if endpoint is None:
            endpoint = self._local.mail_send = self._client().client.mail.send
        return endpoint

    def prepare(self, message: OutgoingMessage) -> dict[str, Any]:
        return build_mail(message, self.settings)

    def attempt(self, message: OutgoingMessage, body: dict[str, Any]) -> Attempt:
        try:
            response = self._mail_send().post(request_body=body)
        except http_errors.HTTPError as exc:
            header_map = dict(exc.headers.items()) if hasattr(exc.headers, "items") else {}
            return classify_http(exc.status_code, str(exc.status_code), _error_text(exc.body),
                                 reset_delay(header_map, self._wall()))
        except AnswerLost as exc:
            return answer_lost(exc.cause)
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            return not_sent(getattr(exc, "reason", exc) if isinstance(exc, urllib.error.URLError) else exc)
        message_id = response.headers.get("X-Message-Id") if response.headers else None
        return Attempt(AttemptKind.accepted, provider_message_id=message_id)


def _error_text(body: bytes | str | None) -> str:
    """SendGrid's error messages (they describe fields, never echo addresses)."""
    if not body:
        return "no detail"
    try:
        data = json.loads(body)
        return "; ".join(str(e.get("message", e)) for e in data.get("errors", []))[:300] or "no detail"
    except (ValueError, AttributeError):
        return "unreadable error body"
