"""`loyalflow serve`: the ASGI app providers and members talk to.

Routes:
- POST /webhooks/sendgrid/events   SendGrid signed Event Webhook
- POST /webhooks/twilio/status     Twilio status callbacks (X-Twilio-Signature)
- POST /webhooks/twilio/inbound    Twilio inbound SMS: STOP/START/HELP keywords
- GET|POST /unsubscribe/{id}/{token}   page, and RFC 8058 one-click POST
- GET|POST /preferences/{id}/{token}   marketing preferences per channel
- GET /healthz

Every refused request (bad or missing signature, old timestamp, replay, bad token) gets 403 and
changes nothing; each accepted one is applied in one transaction together with its receipt (see
receipts.py), which is how replays are recognised. Logs carry no addresses.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from audiences.db import session_scope
from channels.consent import current_consent, record_consent
from channels.settings import ChannelSettings
from channels.unsubscribe import ALL_CHANNELS, InvalidUnsubscribeToken, preferences_url, read_token
from channels.webhooks import pages
from channels.webhooks.receipts import first_receipt
from channels.webhooks.sendgrid_events import SIGNATURE_HEADER, TIMESTAMP_HEADER, SendGridVerifier, apply_events
from channels.webhooks.twilio_sms import handle_inbound, handle_status

log = logging.getLogger("loyalflow.webhooks")

PROGRAM = "Loyalflow Rewards"
CHANNELS = ("email", "sms", "push")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def create_app(engine: Engine, settings: ChannelSettings, *, clock: Callable[[], datetime] = utc_now) -> Starlette:
    window = settings.webhook_replay_window_seconds
    retention = timedelta(days=settings.webhook_receipt_retention_days)
    sendgrid_key = settings.sendgrid_webhook_public_key
    verifier = SendGridVerifier(sendgrid_key.get_secret_value()) if sendgrid_key else None
    twilio_token = settings.twilio_auth_token
    validator = RequestValidator(twilio_token.get_secret_value()) if twilio_token else None
    help_text = f"{PROGRAM}: reply STOP to unsubscribe, START to resubscribe. Support: {settings.email_from}"

    def forbidden(why: str, route: str) -> Response:
        log.warning("refused %s request: %s", route, why)
        return PlainTextResponse("forbidden", status_code=403)

    def public_url(request: Request) -> str:
        """The URL the provider signed: our public base URL, not what a proxy rewrote it to."""
        query = f"?{request.url.query}" if request.url.query else ""
        return f"{settings.public_base_url.rstrip('/')}{request.url.path}{query}"

    async def sendgrid_events(request: Request) -> Response:
        if verifier is None:
            return forbidden("no SendGrid webhook public key configured", "sendgrid")
        raw = await request.body()
        signature = request.headers.get(SIGNATURE_HEADER, "")
        timestamp = request.headers.get(TIMESTAMP_HEADER, "")
        now = clock()
        try:
            age = abs(now.timestamp() - int(timestamp))
        except ValueError:
            return forbidden("missing or malformed timestamp", "sendgrid")
        if not signature or not verifier.verify(raw, signature, timestamp):
            return forbidden("bad signature", "sendgrid")
        if age > window:
            return forbidden("timestamp outside the replay window", "sendgrid")
        try:
            events = json.loads(raw)
        except ValueError:
            return PlainTextResponse("body is not JSON", status_code=400)
        if not isinstance(events, list):
            return PlainTextResponse("expected a JSON array of events", status_code=400)

        def apply() -> int | None:
            with session_scope(engine) as session:
                if not first_receipt(session, "sendgrid", signature, now, retention):
                    return None
                return apply_events(session, events, now)

        new = await run_in_threadpool(apply)
        if new is None:
            return forbidden("replayed request", "sendgrid")
        log.info("sendgrid webhook: %d events, %d new", len(events), new)
        return JSONResponse({"received": len(events), "new": new})

    async def twilio_verified(request: Request, route: str) -> tuple[dict[str, str], str] | Response:
        if validator is None:
            return forbidden("no Twilio auth token configured", route)
        params = {k: str(v) for k, v in (await request.form()).items()}
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature or not validator.validate(public_url(request), params, signature):
            return forbidden("bad signature", route)
        return params, signature

    async def twilio_status(request: Request) -> Response:
        verified = await twilio_verified(request, "twilio status")
        if isinstance(verified, Response):
            return verified
        params, signature = verified
        try:
            ledger_id: int | None = int(request.query_params.get("ledger_id", ""))
        except ValueError:
            ledger_id = None
        now = clock()

        def apply() -> bool:
            with session_scope(engine) as session:
                if not first_receipt(session, "twilio", signature, now, retention):
                    return False
                handle_status(session, params, ledger_id, now)
                return True

        if not await run_in_threadpool(apply):
            return forbidden("replayed request", "twilio status")
        return Response(status_code=204)

    async def twilio_inbound(request: Request) -> Response:
        verified = await twilio_verified(request, "twilio inbound")
        if isinstance(verified, Response):
            return verified
        params, signature = verified
        now = clock()

        def apply() -> str | None:
            with session_scope(engine) as session:
                if not first_receipt(session, "twilio", signature, now, retention):
                    return None
                return handle_inbound(session, params, now, help_text)

        answer = await run_in_threadpool(apply)
        if answer is None:
            return forbidden("replayed request", "twilio inbound")
        return Response(answer, media_type="application/xml")

    def claim(request: Request, want_all: bool) -> Any:
        if settings.unsubscribe_secret is None:
            return HTMLResponse(pages.refused("unsubscribe links are not configured here"), status_code=503)
        try:
            recipient_id = int(request.path_params["recipient_id"])
            found = read_token(settings, request.path_params["token"], recipient_id)
        except (ValueError, InvalidUnsubscribeToken) as exc:
            reason = str(exc) if isinstance(exc, InvalidUnsubscribeToken) else "this link is not valid"
            return HTMLResponse(pages.refused(reason), status_code=403)
        if (found.channel == ALL_CHANNELS) != want_all:
            return HTMLResponse(pages.refused("this link is not valid"), status_code=403)
        return found

    async def unsubscribe(request: Request) -> Response:
        found = claim(request, want_all=False)
        if isinstance(found, Response):
            return found
        prefs = preferences_url(settings, found.recipient_id)
        if request.method == "GET":  # never unsubscribe on GET: mail scanners follow links
            return HTMLResponse(pages.unsubscribe_form(PROGRAM, found.channel, str(request.url.path), prefs))
        form = await request.form()
        one_click = form.get("List-Unsubscribe") == "One-Click"
        now = clock()

        def apply() -> None:
            with session_scope(engine) as session:
                record_consent(
                    session, recipient_kind=found.recipient_kind, recipient_id=found.recipient_id,
                    channel=found.channel, purpose="marketing", action="opt_out",
                    source="one_click" if one_click else "unsubscribe_page", occurred_at=now,
                    evidence="RFC 8058 one-click POST" if one_click else "unsubscribe page form",
                )

        await run_in_threadpool(apply)
        if one_click:
            return PlainTextResponse("unsubscribed")
        return HTMLResponse(pages.unsubscribed(PROGRAM, found.channel, prefs))

    async def preferences(request: Request) -> Response:
        found = claim(request, want_all=True)
        if isinstance(found, Response):
            return found
        kind, rid = found.recipient_kind, found.recipient_id
        form = await request.form() if request.method == "POST" else None
        now = clock()

        def apply() -> dict[str, bool]:
            with session_scope(engine) as session:
                states = {
                    ch: current_consent(session, kind, [rid], ch, "marketing")[rid].value == "opted_in" for ch in CHANNELS
                }
                if form is None:
                    return states
                for ch in CHANNELS:
                    wanted = form.get(ch) == "on"
                    if wanted != states[ch]:
                        record_consent(
                            session, recipient_kind=kind, recipient_id=rid, channel=ch, purpose="marketing",
                            action="opt_in" if wanted else "opt_out", source="preference_page", occurred_at=now,
                            evidence="preference page form",
                        )
                        states[ch] = wanted
                return states

        states = await run_in_threadpool(apply)
        return HTMLResponse(pages.preferences(PROGRAM, states, str(request.url.path), saved=form is not None))

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/webhooks/sendgrid/events", sendgrid_events, methods=["POST"]),
            Route("/webhooks/twilio/status", twilio_status, methods=["POST"]),
            Route("/webhooks/twilio/inbound", twilio_inbound, methods=["POST"]),
            Route("/unsubscribe/{recipient_id}/{token}", unsubscribe, methods=["GET", "POST"]),
            Route("/preferences/{recipient_id}/{token}", preferences, methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
