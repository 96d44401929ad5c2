"""A fake Twilio Messages API (2010-04-01) that answers as Twilio documents it.

201 with a message resource (sid SM...) on success; HTTP Basic auth with the account SID and
auth token, else 401 (code 20003); per-number errors as Twilio returns them: 21211 invalid 'To',
21614 not a mobile number, 21610 the recipient replied STOP (all 400); faults on demand: 429 with
Retry-After, 5xx, slow answers.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.fake_providers.server import Fault, FakeProvider

MESSAGES = {
    21211: "The 'To' number is not a valid phone number.",
    21614: "'To' number is not a valid mobile number",
    21610: "Attempt to send to unsubscribed recipient",
    20003: "Authenticate",
    20429: "Too Many Requests",
}


def twilio_error(code: int, status: int = 400, headers: dict[str, str] | None = None) -> Fault:
    body = {"code": code, "message": MESSAGES.get(code, "error"), "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}
    return Fault(status, body, headers or {})


def rate_limited(retry_after: int = 1) -> Fault:
    return twilio_error(20429, 429, {"Retry-After": str(retry_after)})


class FakeTwilio(FakeProvider):
    def __init__(self, account_sid: str = "AC" + "0" * 32, auth_token: str = "test-auth-token", latency: float = 0.0) -> None:
        super().__init__(latency)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.app = Starlette(routes=[Route("/2010-04-01/Accounts/{sid}/Messages.json", self.create_message, methods=["POST"])])

    def _authorised(self, request: Request) -> bool:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("authorization") == expected and request.path_params["sid"] == self.account_sid

    async def create_message(self, request: Request) -> Response:
        form = dict(await request.form())
        headers = dict(request.headers)
        if not self._authorised(request):
            self.record(request.url.path, headers, form, 401)
            return JSONResponse(twilio_error(20003, 401).body, 401)
        to = str(form.get("To", ""))
        fault = self.next_fault(to)
        await self.pause(fault)
        if fault is not None:
            self.record(request.url.path, headers, form, fault.status)
            return JSONResponse(fault.body, fault.status, headers=fault.headers)
        if not to or not (form.get("From") or form.get("MessagingServiceSid")) or not form.get("Body"):
            self.record(request.url.path, headers, form, 400)
            return JSONResponse(twilio_error(21604).body | {"message": "A 'To', 'From' and 'Body' are required."}, 400)
        sid = "SM" + uuid.uuid4().hex
        self.record(request.url.path, headers, form, 201)
        return JSONResponse(_resource(self.account_sid, sid, form), 201)


def _resource(account_sid: str, sid: str, form: dict[str, Any]) -> dict[str, Any]:
    return {
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "body": form.get("Body"),
        "date_created": "Mon, 23 Nov 2026 12:00:00 +0000",
        "date_sent": None,
        "date_updated": "Mon, 23 Nov 2026 12:00:00 +0000",
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": form.get("From"),
        "messaging_service_sid": form.get("MessagingServiceSid"),
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "queued",
        "subresource_uris": {"media": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}/Media.json"},
        "to": form.get("To"),
        "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
    }
