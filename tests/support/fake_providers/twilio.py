"""A fake Twilio Messages API (2010-04-01) that answers as Twilio documents it.

201 with a message resource (sid SM...) on success; HTTP Basic auth with the account SID and
auth token, else 401 (code 20003); per-number errors as Twilio returns them: 21211 invalid 'To',
21614 not a mobile number, 21610 the recipient replied STOP (all 400); faults on demand: 429 with
Retry-After, 5xx, slow answers, and slow answers to messages it created (`slow_answer`).

It keeps the messages it created and lists them as Twilio's Messages list resource does
(GET .../Messages.json, filters To, From, DateSent, DateSent< and DateSent> - the SDK's
`date_sent_before/after` - on the sent date, newest first, paged with PageSize/Page and
next_page_uri). A created message is reported `sent` with date_sent = its creation instant (the
carrier took it at once). For every created message it also queues the status callback Twilio
would make ("sent", to the StatusCallback URL given, whose query carries our ledger id) in
`status_events`, for a test to hand to the webhook code.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import uuid
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.fake_providers.server import SLOW, Fault, FakeProvider

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
        self.created: list[dict[str, Any]] = []
        self.status_events: list[dict[str, Any]] = []
        self._created_lock = threading.Lock()
        self.lookups = 0
        self.app = Starlette(routes=[
            Route("/2010-04-01/Accounts/{sid}/Messages.json", self.create_message, methods=["POST"]),
            Route("/2010-04-01/Accounts/{sid}/Messages.json", self.list_messages, methods=["GET"]),
        ])

    def reset(self) -> None:
        super().reset()
        with self._created_lock:
            self.created.clear()
            self.status_events.clear()
            self.lookups = 0

    def drain_status_events(self) -> list[dict[str, Any]]:
        with self._created_lock:
            out, self.status_events = self.status_events, []
        return out

    async def list_messages(self, request: Request) -> Response:
        if not self._authorised(request):
            return JSONResponse(twilio_error(20003, 401).body, 401)
        q = request.query_params
        with self._created_lock:
            self.lookups += 1
            items = list(self.created)
        try:
            exact, after, before = (_when(q.get(k)) for k in ("DateSent", "DateSent>", "DateSent<"))
        except ValueError:
            return JSONResponse(twilio_error(21606, 400).body | {"message": "Invalid DateSent"}, 400)

        def keep(m: dict[str, Any]) -> bool:
            sent = m["_sent"]
            return ((not q.get("To") or m["to"] == q["To"]) and (not q.get("From") or m["from"] == q["From"])
                    and _matches(sent, exact, "=") and _matches(sent, after, ">=") and _matches(sent, before, "<="))

        found = sorted((m for m in items if keep(m)), key=lambda m: m["_sent"], reverse=True)
        size = min(int(q.get("PageSize", "50")), 1000)
        page = int(q.get("Page", "0"))
        chunk = found[page * size:(page + 1) * size]
        base = request.url.path
        params = {k: v for k, v in q.items() if k not in ("Page", "PageToken")}

        def uri(n: int) -> str:
            return f"{base}?{urlencode(params | {'Page': n, 'PageSize': size})}"

        return JSONResponse({
            "messages": [{k: v for k, v in m.items() if not k.startswith("_")} for m in chunk],
            "page": page, "page_size": size, "start": page * size, "end": page * size + max(len(chunk) - 1, 0),
            "uri": uri(page), "first_page_uri": uri(0),
            "next_page_uri": uri(page + 1) if (page + 1) * size < len(found) else None,
            "previous_page_uri": uri(page - 1) if page > 0 else None,
        })

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
        late = 0.0
        if fault is not None and fault.status == SLOW:
            fault, late = None, fault.delay
        await self.pause(fault)
        if fault is not None:
            self.record(request.url.path, headers, form, fault.status)
            return JSONResponse(fault.body, fault.status, headers=fault.headers)
        if not to or not (form.get("From") or form.get("MessagingServiceSid")) or not form.get("Body"):
            self.record(request.url.path, headers, form, 400)
            return JSONResponse(twilio_error(21604).body | {"message": "A 'To', 'From' and 'Body' are required."}, 400)
        sid = "SM" + uuid.uuid4().hex
        now = datetime.now(UTC)
        self.record(request.url.path, headers, form, 201)
        resource = _resource(self.account_sid, sid, form)
        stored = resource | {"status": "sent", "date_created": format_datetime(now), "date_sent": format_datetime(now),
                             "date_updated": format_datetime(now), "_sent": now}
        callback = str(form.get("StatusCallback") or "")
        with self._created_lock:
            self.created.append(stored)
            if callback:
                ledger = parse_qs(urlsplit(callback).query).get("ledger_id", [None])[0]
                self.status_events.append({"ledger_id": ledger, "MessageSid": sid, "MessageStatus": "sent",
                                           "To": to, "AccountSid": self.account_sid})
        if late:
            await asyncio.sleep(late)
        return JSONResponse(resource, 201)


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


def _when(value: str | None) -> datetime | date | None:
    """A DateSent filter value: a day (YYYY-MM-DD) or, as the SDK sends it, an ISO 8601 instant."""
    if not value:
        return None
    if len(value) == 10:
        return date.fromisoformat(value)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _matches(sent: datetime, bound: datetime | date | None, op: str) -> bool:
    if bound is None:
        return True
    if isinstance(bound, datetime):
        left, right = sent, bound.astimezone(UTC)
    else:
        left, right = sent.date(), bound  # type: ignore[assignment]
    return {"=": left == right, ">=": left >= right, "<=": left <= right}[op]
