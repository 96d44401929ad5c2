"""The provider webhooks behind `loyalflow serve` (and /healthz), as module-level Starlette endpoints.

What each needs (engine, settings, clock, the providers' verifiers) is on `request.app.state`
(set by `create_app`); a refused request raises `HTTPException`, rendered by the app's handlers.
The provider webhooks verify the signature over a body read with a cap and a deadline
(bodies.py), then apply their effects together with a receipt in one transaction
(`receipts.apply_once`), which is how a replay is recognised and refused.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from channels.webhooks.bodies import (
    SENDGRID_EVENTS_LIMIT,
    TWILIO_LIMIT,
    read_body,
    read_form,
)
from channels.webhooks.receipts import apply_once
from channels.webhooks.request_state import (
    log,
    now_of,
    refuse,
    retention_of,
    settings_of,
    timeout_of,
)
from channels.webhooks.sendgrid_events import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    apply_events,
)
from channels.webhooks.twilio_sms import handle_inbound, handle_status


async def sendgrid_events(request: Request) -> Response:
    verifier = request.app.state.sendgrid
    if verifier is None:
        refuse("sendgrid", "no SendGrid webhook public key configured")
    raw = await read_body(request, SENDGRID_EVENTS_LIMIT, timeout_of(request))
    signature = request.headers.get(SIGNATURE_HEADER, "")
    timestamp = request.headers.get(TIMESTAMP_HEADER, "")
    now = now_of(request)
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        refuse("sendgrid", "missing or malformed timestamp")
    if not signature or not verifier.verify(raw, signature, timestamp):
        refuse("sendgrid", "bad signature")
    if abs(now.timestamp() - int(timestamp)) > settings_of(request).webhook_replay_window_seconds:
        refuse("sendgrid", "timestamp outside the replay window")
    try:
        events = json.loads(raw)
    except ValueError:
        raise HTTPException(400, "body is not JSON") from None
    if not isinstance(events, list):
        raise HTTPException(400, "expected a JSON array of events")
    signed = timestamp.encode() + b"\n" + raw  # what was signed: a twin signature of it is a replay too
    outcome = await apply_once(request.app.state.engine, "sendgrid", signed, now, retention_of(request),
                               lambda session: apply_events(session, events, now), route="sendgrid")
    log.info("sendgrid webhook: %d events, %d new, %d malformed skipped", outcome.received, outcome.new, outcome.skipped)
    return JSONResponse({"received": outcome.received, "new": outcome.new, "skipped": outcome.skipped})


def _public_url(request: Request) -> str:
    """The URL the provider signed: our public base URL, not what a proxy rewrote it to."""
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{settings_of(request).public_base_url.rstrip('/')}{request.url.path}{query}"


async def _twilio_verified(request: Request, route: str) -> tuple[dict[str, str], str]:
    validator = request.app.state.twilio
    if validator is None:
        refuse(route, "no Twilio auth token configured")
    params = await read_form(request, TWILIO_LIMIT, timeout_of(request))
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not validator.validate(_public_url(request), params, signature):
        refuse(route, "bad signature")
    return params, signature  # HMAC-SHA1 of URL and params: deterministic, so it names the payload


async def twilio_status(request: Request) -> Response:
    params, signature = await _twilio_verified(request, "twilio status")
    raw_id = request.query_params.get("ledger_id", "")
    ledger_id = int(raw_id) if raw_id.isascii() and raw_id.isdigit() and len(raw_id) < 19 else None
    now = now_of(request)
    await apply_once(request.app.state.engine, "twilio", signature, now, retention_of(request),
                     lambda session: handle_status(session, params, ledger_id, now), route="twilio status")
    return Response(status_code=204)


async def twilio_inbound(request: Request) -> Response:
    params, signature = await _twilio_verified(request, "twilio inbound")
    now = now_of(request)
    help_text = request.app.state.help_text
    answer = await apply_once(request.app.state.engine, "twilio", signature, now, retention_of(request),
                              lambda session: handle_inbound(session, params, now, help_text), route="twilio inbound")
    return Response(answer, media_type="application/xml")


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")
