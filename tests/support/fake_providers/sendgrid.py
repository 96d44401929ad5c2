"""A fake SendGrid v3 Mail Send that answers as SendGrid documents it.

202 with X-Message-Id on success; 400 with an `errors` list for a malformed body; 401 for a wrong
API key; faults on demand: 429 with X-RateLimit-Limit/Remaining/Reset (a Unix time), 5xx, slow
answers, and slow answers to requests it accepted (`slow_answer`). Every accepted message also
yields the Event Webhook event SendGrid would post ("delivered", with our custom_args at top level,
as SendGrid documents), collected in `events` for a test to hand to the webhook code. Run alone for benchmarks: `python -m tests.support.fake_providers sendgrid --port N`.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.fake_providers.server import SLOW, Fault, FakeProvider


def rate_limited(reset_in: int = 1) -> Fault:
    """429 as SendGrid sends it; the reset time is filled in when the fault fires."""
    return Fault(429, {"errors": [{"field": None, "message": "too many requests"}]}, {"X-RateLimit-Reset-In": str(reset_in)})


def server_error(status: int = 500) -> Fault:
    return Fault(status, {"errors": [{"field": None, "message": "internal error"}]})


def _validate(body: Any) -> list[dict[str, Any]]:
    errors = []
    if not isinstance(body, dict):
        return [{"field": None, "message": "Bad Request"}]
    personalizations = body.get("personalizations")
    if not personalizations or not all(p.get("to") for p in personalizations):
        errors.append({"field": "personalizations", "message": "The personalizations field is required and must have at least one personalization."})
    if not (body.get("from") or {}).get("email"):
        errors.append({"field": "from.email", "message": "The from object must be provided for every email send."})
    if not body.get("content") and not body.get("template_id"):
        errors.append({"field": "content", "message": "Unless a valid template_id is provided, the content parameter is required."})
    for name, value in (body.get("custom_args") or {}).items():
        if not isinstance(value, str):
            errors.append({"field": f"custom_args.{name}", "message": "custom_args values must be strings"})
    return errors


class FakeSendGrid(FakeProvider):
    def __init__(self, api_key: str = "SG.test-key", latency: float = 0.0) -> None:
        super().__init__(latency)
        self.api_key = api_key
        self.events: list[dict[str, Any]] = []
        self._events_lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/v3/mail/send", self.mail_send, methods=["POST"]),
                Route("/_stats", self.stats, methods=["GET"]),
            ]
        )

    def reset(self) -> None:
        super().reset()
        with self._events_lock:
            self.events.clear()

    def drain_events(self) -> list[dict[str, Any]]:
        """The events posted since the last drain (SendGrid batches them the same way)."""
        with self._events_lock:
            out, self.events = self.events, []
        return out

    def _event(self, body: dict[str, Any], message_id: str) -> None:
        to = body["personalizations"][0]["to"][0]["email"]
        event = {"email": to, "timestamp": int(time.time()), "event": "delivered",
                 "sg_event_id": uuid.uuid4().hex, "sg_message_id": f"{message_id}.filter0001.1.0",
                 **(body.get("custom_args") or {})}
        with self._events_lock:
            self.events.append(event)

    async def stats(self, request: Request) -> Response:
        """What a benchmark in another process needs: counts, duplicates and the accept times."""
        accepted = self.accepted
        ledger_ids = [str((r.body.get("custom_args") or {}).get("ledger_id")) for r in accepted]
        times = sorted(r.at for r in accepted)
        return JSONResponse({
            "received": len(self.received),
            "accepted": len(accepted),
            "duplicates": len(ledger_ids) - len(set(ledger_ids)),
            "first": times[0] if times else None,
            "last": times[-1] if times else None,
        })

    async def mail_send(self, request: Request) -> Response:
        raw = await request.body()
        headers = dict(request.headers)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        to = None
        try:
            to = body["personalizations"][0]["to"][0]["email"]  # type: ignore[index]
        except (TypeError, KeyError, IndexError):
            pass
        if headers.get("authorization") != f"Bearer {self.api_key}":
            await self.pause(None)
            self.record(request.url.path, headers, body, 401)
            return JSONResponse({"errors": [{"field": None, "message": "The provided authorization grant is invalid, expired, or revoked"}]}, 401)
        fault = self.next_fault(to)
        late = 0.0
        if fault is not None and fault.status == SLOW:
            fault, late = None, fault.delay
        await self.pause(fault)
        if fault is not None:
            extra = dict(fault.headers)
            if "X-RateLimit-Reset-In" in extra:
                reset_in = int(extra.pop("X-RateLimit-Reset-In"))
                extra |= {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0",
                          "X-RateLimit-Reset": str(int(time.time()) + reset_in)}
            self.record(request.url.path, headers, body, fault.status)
            return JSONResponse(fault.body, fault.status, headers=extra)
        errors = _validate(body)
        if errors:
            self.record(request.url.path, headers, body, 400)
            return JSONResponse({"errors": errors}, 400)
        message_id = uuid.uuid4().hex[:22]
        self.record(request.url.path, headers, body, 202)
        self._event(body, message_id)
        if late:
            await asyncio.sleep(late)
        return Response(status_code=202, headers={"X-Message-Id": message_id})
