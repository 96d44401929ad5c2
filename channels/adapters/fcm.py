"""Push through FCM HTTP v1: httpx, with OAuth2 access tokens from a google-auth service account.

The service-account file's token_uri decides where tokens come from (a local fake in tests).
Outcomes: 200 -> accepted (the message name kept); UNREGISTERED (404) and SENDER_ID_MISMATCH ->
permanent and the device token revoked; INVALID_ARGUMENT (400) -> permanent; other 401/403 or a
refused token grant -> configuration failure; 429 QUOTA_EXCEEDED, 5xx and network errors -> retry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import google.auth.exceptions
import google.auth.transport.requests
import httpx
from google.oauth2 import service_account

from channels.adapters.base import DeliveryResult, OutgoingMessage
from channels.adapters.dispatch import Attempt, AttemptKind, Dispatcher, RetryPolicy, reset_delay
from channels.ratelimit import TokenBucket, bucket_for
from channels.settings import ChannelSettings
from templates.rendered import RenderedPush

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
REVOKING_CODES = {"UNREGISTERED", "SENDER_ID_MISMATCH"}


def fcm_error_code(body: Any) -> str | None:
    """The FcmError errorCode from an error body, else the google.rpc status."""
    error = body.get("error", {}) if isinstance(body, dict) else {}
    for detail in error.get("details", []) or []:
        if isinstance(detail, dict) and detail.get("errorCode"):
            return str(detail["errorCode"])
    return error.get("status")


def build_payload(message: OutgoingMessage) -> dict[str, Any]:
    content = message.content
    if not isinstance(content, RenderedPush):
        raise TypeError(f"ledger {message.ledger_id}: push channel needs a RenderedPush")
    data = {str(k): str(v) for k, v in content.data.items()}
    data["ledger_id"] = str(message.ledger_id)
    if content.deep_link:
        data["deep_link"] = content.deep_link
    return {
        "message": {
            "token": message.to,
            "notification": {"title": content.title, "body": content.body},
            "data": data,
        }
    }


class FcmAdapter:
    provider = "fcm"

    def __init__(
        self,
        settings: ChannelSettings,
        *,
        bucket: TokenBucket | None = None,
        sleep: Callable[[float], None] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        settings.require("fcm_project_id", "fcm_credentials_file")
        self.settings = settings
        self.credentials = service_account.Credentials.from_service_account_file(
            str(settings.fcm_credentials_file), scopes=[SCOPE]
        )
        self._token_lock = threading.Lock()
        self._wall = wall_clock
        self.url = f"{settings.fcm_base_url.rstrip('/')}/v1/projects/{settings.fcm_project_id}/messages:send"
        self.http = httpx.Client(
            timeout=settings.request_timeout_seconds,
            limits=httpx.Limits(max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency),
        )
        self.dispatcher = Dispatcher(
            self.provider,
            bucket or bucket_for(self.provider, settings.fcm_project_id or "", settings.push_rate_per_second),
            RetryPolicy(settings.max_attempts, settings.backoff_base_seconds, settings.backoff_max_seconds),
            settings.concurrency,
            sleep,
        )

    def close(self) -> None:
        self.http.close()

    def _token(self, force: bool = False) -> str:
        with self._token_lock:  # one refresh at a time; the others reuse its token
            if force or not self.credentials.valid:
                self.credentials.refresh(google.auth.transport.requests.Request())
            return str(self.credentials.token)

    def send(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        # every payload is built before the first request, so a malformed message sends nothing at all
        payloads = {m.ledger_id: build_payload(m) for m in messages}
        return self.dispatcher.run(messages, lambda m: self._attempt(payloads[m.ledger_id]))

    def _attempt(self, payload: dict[str, Any]) -> Attempt:
        for fresh_token in (False, True):  # an expired or revoked access token: refresh once
            try:
                token = self._token(force=fresh_token)
            except google.auth.exceptions.RefreshError as exc:
                detail = str(exc.args[0]) if exc.args else type(exc).__name__
                return Attempt(AttemptKind.config, error_code="oauth", reason=f"token grant refused: {detail}"[:200], http_status=401)
            except google.auth.exceptions.TransportError:
                return Attempt(AttemptKind.retry, error_code="oauth_network", reason="token endpoint unreachable")
            try:
                response = self.http.post(self.url, json=payload, headers={"Authorization": f"Bearer {token}"})
            except httpx.HTTPError as exc:
                return Attempt(AttemptKind.retry, error_code="network", reason=f"network error: {type(exc).__name__}")
            if response.status_code != 401 or fresh_token:
                break
        return self._classify(response)

    def _classify(self, response: httpx.Response) -> Attempt:
        status = response.status_code
        if status == 200:
            return Attempt(AttemptKind.accepted, provider_message_id=response.json().get("name"))
        try:
            body = response.json()
        except ValueError:
            body = {}
        code = fcm_error_code(body) or str(status)
        if code in REVOKING_CODES:
            return Attempt(AttemptKind.permanent, error_code=code, reason="device token no longer valid", http_status=status, revoke_token=True)
        if status in (401, 403):
            return Attempt(AttemptKind.config, error_code=code, reason=f"FCM refused the credentials ({code})", http_status=status)
        if status == 429 or status >= 500:
            return Attempt(AttemptKind.retry, error_code=code, reason=f"HTTP {status}", retry_after=reset_delay(dict(response.headers), self._wall()), http_status=status)
        return Attempt(AttemptKind.permanent, error_code=code, reason=f"FCM refused the message ({code})", http_status=status)
