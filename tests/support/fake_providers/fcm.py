"""A fake FCM HTTP v1 send endpoint and Google OAuth2 token endpoint.

Token endpoint (`/token`): checks the service account's signed JWT assertion (RS256, with the
public key the test gives) and issues a bearer token; a bad assertion gets 400 invalid_grant.
Send (`/v1/projects/{project}/messages:send`): a valid bearer token is required (else 401
UNAUTHENTICATED); tokens in `unregistered` get 404 with FcmError UNREGISTERED, as FCM does;
faults on demand: 429 QUOTA_EXCEEDED with Retry-After, 500 INTERNAL, 503 UNAVAILABLE.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from google.auth import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.fake_providers.server import Fault, FakeProvider

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"


def fcm_error(status: int, rpc_status: str, code: str | None = None, headers: dict[str, str] | None = None) -> Fault:
    details = [{"@type": FCM_ERROR, "errorCode": code}] if code else []
    return Fault(status, {"error": {"code": status, "message": rpc_status, "status": rpc_status, "details": details}}, headers or {})


def quota_exceeded(retry_after: int = 1) -> Fault:
    return fcm_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", {"Retry-After": str(retry_after)})


def unavailable() -> Fault:
    return fcm_error(503, "UNAVAILABLE", "UNAVAILABLE")


class FakeFcm(FakeProvider):
    def __init__(self, public_key_pem: str = "", project_id: str = "loyalflow-test", latency: float = 0.0) -> None:
        super().__init__(latency)
        self.public_key_pem = public_key_pem
        """Set it once the service account exists (its token_uri needs this fake's port first)."""
        self.project_id = project_id
        self.issued: set[str] = set()
        self.token_requests = 0
        self.unregistered: set[str] = set()
        self.refuse_grants = False
        self.app = Starlette(
            routes=[
                Route("/token", self.token, methods=["POST"]),
                Route("/v1/projects/{project}/messages:send", self.send, methods=["POST"]),
            ]
        )

    async def token(self, request: Request) -> Response:
        form = dict(await request.form())
        self.token_requests += 1
        try:
            if self.refuse_grants:
                raise ValueError("grant refused by the test")
            # signed with the service account's key, addressed to Google's token endpoint (google-auth
            # sends that audience whatever the token_uri) or to this endpoint
            audiences = [GOOGLE_TOKEN_URI, str(request.url)]
            jwt.decode(str(form.get("assertion", "")), certs=self.public_key_pem, audience=audiences)
        except ValueError:
            return JSONResponse({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, 400)
        access = "ya29." + secrets.token_urlsafe(16)
        self.issued.add(access)
        return JSONResponse({"access_token": access, "expires_in": 3600, "token_type": "Bearer"})

    async def send(self, request: Request) -> Response:
        headers = dict(request.headers)
        try:
            body: Any = json.loads(await request.body())
        except ValueError:
            body = None
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.issued or request.path_params["project"] != self.project_id:
            self.record(request.url.path, headers, body, 401)
            return JSONResponse(fcm_error(401, "UNAUTHENTICATED").body, 401)  # no FcmError detail, as FCM does
        token = ((body or {}).get("message") or {}).get("token")
        if token in self.unregistered:
            fault: Fault | None = fcm_error(404, "NOT_FOUND", "UNREGISTERED")
        else:
            fault = self.next_fault(token)
        await self.pause(fault)
        if fault is not None:
            self.record(request.url.path, headers, body, fault.status)
            return JSONResponse(fault.body, fault.status, headers=fault.headers)
        if not token:
            self.record(request.url.path, headers, body, 400)
            return JSONResponse(fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT").body, 400)
        self.record(request.url.path, headers, body, 200)
        return JSONResponse({"name": f"projects/{self.project_id}/messages/{secrets.token_hex(8)}"})
