"""Push through FCM HTTP v1: httpx, with OAuth2 access tokens from a google-auth service account.

The service-account file's token_uri decides where tokens come from (a local fake in tests).
Outcomes: 200 -> accepted (the message name kept); UNREGISTERED (404) and SENDER_ID_MISMATCH ->
permanent and the device token revoked; INVALID_ARGUMENT (400) -> permanent; other 401/403 or a
refused token grant -> configuration failure; 429 QUOTA_EXCEEDED, 5xx and connections that never
carried the request -> retry; a read timeout or a connection lost mid-answer -> unknown.
"""

from __future__ import annotations

import threading
from typing import Any

import google.auth.exceptions
import google.auth.transport.requests
import httpx
from google.oauth2 import service_account

from channels.adapters.base import OutgoingMessage
from channels.adapters.dispatch import Attempt, AttemptKind, answer_lost, classify_http, not_sent, reset_delay
from channels.adapters.provider import ProviderAdapter
from channels.errors import MessageRejected
from channels.settings import ChannelSettings
from templates.rendered import RenderedPush

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
REVOKING_CODES = {"UNREGISTERED", "SENDER_ID_MISMATCH"}
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteError, httpx.WriteTimeout,
            httpx.UnsupportedProtocol, httpx.LocalProtocolError)
"""httpx errors raised before the request was written whole: FCM cannot have acted on it."""


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
        raise MessageRejected(message.ledger_id, "wrong_content", "push channel needs a RenderedPush")
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


class FcmAdapter(ProviderAdapter):
    provider = "fcm"
    required = ("fcm_project_id", "fcm_credentials_file")

    def __init__(self, settings: ChannelSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.credentials = service_account.Credentials.from_service_account_file(
            str(settings.fcm_credentials_file), scopes=[SCOPE]
        )
        self._token_lock = threading.Lock()
        self.url = f"{settings.fcm_base_url.rstrip('/')}/v1/projects/{settings.fcm_project_id}/messages:send"
        self.http = httpx.Client(
            timeout=settings.request_timeout_seconds,
            limits=httpx.Limits(max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency),
        )

    def sender(self) -> str:
        return self.settings.fcm_project_id or ""

    def rate(self) -> float:
        return self.settings.push_rate_per_second

    def close(self) -> None:
        self.http.close()

    def _token(self, force: bool = False) -> str:
        with self._token_lock:  # one refresh at a time; the others reuse its token
            if force or not self.credentials.valid:
                self.credentials.refresh(google.auth.transport.requests.Request())
            return str(self.credentials.token)

    def prepare(self, message: OutgoingMessage) -> dict[str, Any]:
        return build_payload(message)

    def attempt(self, message: OutgoingMessage, payload: dict[str, Any]) -> Attempt:
        for fresh_token in (False, True):  # an expired or revoked access token: refresh once
            try:
                token = self._token(force=fresh_token)
            except google.auth.exceptions.RefreshError as exc:
                detail = str(exc.args[0]) if exc.args else type(exc).__name__
                return Attempt(AttemptKind.config, error_code="oauth", reason=f"token grant refused: {detail}"[:200],
                               http_status=401)
            except google.auth.exceptions.TransportError:
                return Attempt(AttemptKind.retry, error_code="oauth_network", reason="token endpoint unreachable",
                               transport=True)
            try:
                response = self.http.post(self.url, json=payload, headers={"Authorization": f"Bearer {token}"})
            except NOT_SENT as exc:
                return not_sent(exc)
            except httpx.HTTPError as exc:  # read timeout, connection reset or closed mid-answer
                return answer_lost(exc)
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
            return Attempt(AttemptKind.permanent, error_code=code, reason="device token no longer valid",
                           http_status=status, revoke_token=True)
        reason = f"FCM refused the credentials ({code})" if status in (401, 403) else f"FCM refused the message ({code})"
        return classify_http(status, code, reason, reset_delay(dict(response.headers), self._wall()))
