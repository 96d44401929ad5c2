"""The endpoints behind `loyalflow serve`, as plain module-level Starlette endpoints.

What each needs (engine, settings, clock, the providers' verifiers) is on `request.app.state`
(set by `create_app`); a refused request raises `HTTPException`, rendered by the app's handlers.
The provider webhooks verify the signature over a body read with a cap and a deadline
(bodies.py), then apply their effects together with a receipt in one transaction
(`receipts.apply_once`), which is how a replay is recognised and refused.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from audiences.db import session_scope
from audiences.models import Member, Staff
from channels.consent import current_consent, record_consent
from channels.settings import ChannelSettings
from channels.unsubscribe import (
    ALL_CHANNELS,
    InvalidUnsubscribeToken,
    UnsubscribeClaim,
    form_token,
    preferences_url,
    read_token,
    valid_form_token,
)
from channels.webhooks import pages
from channels.webhooks.bodies import PAGE_FORM_LIMIT, SENDGRID_EVENTS_LIMIT, TWILIO_LIMIT, read_body, read_form
from channels.webhooks.page_text import page_text
from channels.webhooks.receipts import apply_once
from channels.webhooks.sendgrid_events import SIGNATURE_HEADER, TIMESTAMP_HEADER, apply_events
from channels.webhooks.twilio_sms import handle_inbound, handle_status
from templates.vocabulary import CHANNELS

log = logging.getLogger("loyalflow.webhooks")

PAGE_PREFIXES = ("/unsubscribe/", "/preferences/")


class PageRefused(HTTPException):
    """A member page refused: rendered as a page in the member's language (see app.py)."""

    def __init__(self, status_code: int, reason: str, brand: pages.Branding | None = None) -> None:
        super().__init__(status_code, reason)
        self.reason = reason
        self.brand = brand


def refuse(route: str, why: str, status_code: int = 403) -> NoReturn:
    log.warning("refused %s request: %s", route, why)
    raise HTTPException(status_code, "forbidden" if status_code == 403 else why)


def _settings(request: Request) -> ChannelSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


def _now(request: Request) -> datetime:
    return request.app.state.clock()  # type: ignore[no-any-return]


def _retention(request: Request) -> timedelta:
    return timedelta(days=_settings(request).webhook_receipt_retention_days)


def _timeout(request: Request) -> float:
    return _settings(request).request_body_timeout_seconds


# --- provider webhooks -------------------------------------------------------------------------


async def sendgrid_events(request: Request) -> Response:
    verifier = request.app.state.sendgrid
    if verifier is None:
        refuse("sendgrid", "no SendGrid webhook public key configured")
    raw = await read_body(request, SENDGRID_EVENTS_LIMIT, _timeout(request))
    signature = request.headers.get(SIGNATURE_HEADER, "")
    timestamp = request.headers.get(TIMESTAMP_HEADER, "")
    now = _now(request)
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        refuse("sendgrid", "missing or malformed timestamp")
    if not signature or not verifier.verify(raw, signature, timestamp):
        refuse("sendgrid", "bad signature")
    if abs(now.timestamp() - int(timestamp)) > _settings(request).webhook_replay_window_seconds:
        refuse("sendgrid", "timestamp outside the replay window")
    try:
        events = json.loads(raw)
    except ValueError:
        raise HTTPException(400, "body is not JSON") from None
    if not isinstance(events, list):
        raise HTTPException(400, "expected a JSON array of events")
    signed = timestamp.encode() + b"\n" + raw  # what was signed: a twin signature of it is a replay too
    outcome = await apply_once(request.app.state.engine, "sendgrid", signed, now, _retention(request),
                               lambda session: apply_events(session, events, now), route="sendgrid")
    log.info("sendgrid webhook: %d events, %d new, %d malformed skipped", outcome.received, outcome.new, outcome.skipped)
    return JSONResponse({"received": outcome.received, "new": outcome.new, "skipped": outcome.skipped})


def _public_url(request: Request) -> str:
    """The URL the provider signed: our public base URL, not what a proxy rewrote it to."""
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{_settings(request).public_base_url.rstrip('/')}{request.url.path}{query}"


async def _twilio_verified(request: Request, route: str) -> tuple[dict[str, str], str]:
    validator = request.app.state.twilio
    if validator is None:
        refuse(route, "no Twilio auth token configured")
    params = await read_form(request, TWILIO_LIMIT, _timeout(request))
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not validator.validate(_public_url(request), params, signature):
        refuse(route, "bad signature")
    return params, signature  # HMAC-SHA1 of URL and params: deterministic, so it names the payload


async def twilio_status(request: Request) -> Response:
    params, signature = await _twilio_verified(request, "twilio status")
    raw_id = request.query_params.get("ledger_id", "")
    ledger_id = int(raw_id) if raw_id.isascii() and raw_id.isdigit() and len(raw_id) < 19 else None
    now = _now(request)
    await apply_once(request.app.state.engine, "twilio", signature, now, _retention(request),
                     lambda session: handle_status(session, params, ledger_id, now), route="twilio status")
    return Response(status_code=204)


async def twilio_inbound(request: Request) -> Response:
    params, signature = await _twilio_verified(request, "twilio inbound")
    now = _now(request)
    help_text = request.app.state.help_text
    answer = await apply_once(request.app.state.engine, "twilio", signature, now, _retention(request),
                              lambda session: handle_inbound(session, params, now, help_text), route="twilio inbound")
    return Response(answer, media_type="application/xml")


# --- member pages --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PageClaim:
    claim: UnsubscribeClaim
    token: str
    brand: pages.Branding


def _brand(request: Request, kind: str | None, recipient_id: int | None) -> pages.Branding:
    settings = _settings(request)
    locale = None
    if recipient_id is not None and kind in ("member", "staff"):
        model = Member if kind == "member" else Staff
        with session_scope(request.app.state.engine) as session:
            person = session.get(model, recipient_id)
            locale = person.locale if person is not None else None
    lang, text = page_text(locale)
    return pages.Branding(settings.program_name, settings.support_email or settings.email_from, lang, text)


def _claim(request: Request, want_all: bool) -> PageClaim:
    settings = _settings(request)
    if settings.unsubscribe_secret is None:
        raise PageRefused(503, "unconfigured")
    token = request.path_params["token"]
    raw_id = request.path_params["recipient_id"]
    try:
        if not (raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= 18):
            raise InvalidUnsubscribeToken("this link is not valid")
        found = read_token(settings, token, int(raw_id))
    except InvalidUnsubscribeToken as exc:
        raise PageRefused(403, exc.code) from None
    if (found.channel == ALL_CHANNELS) != want_all:
        raise PageRefused(403, "invalid")
    return PageClaim(found, token, _brand(request, found.recipient_kind, found.recipient_id))


def _same_site(request: Request) -> bool:
    """False when the browser says the form came from another site (a forwarded link opened there).
    Under our Referrer-Policy no-referrer a same-site form post carries `Origin: null` and no Referer."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    ours = urlsplit(_settings(request).public_base_url)
    for header in ("origin", "referer"):
        value = request.headers.get(header)
        if value and value != "null":
            seen = urlsplit(value)
            if (seen.scheme, seen.netloc) != (ours.scheme, ours.netloc):
                return False
    return True


def _check_page_form(request: Request, page: PageClaim, form: dict[str, str]) -> dict[str, str]:
    """The page's own form, checked: from our site, with the form token of this very link."""
    if not _same_site(request) or not valid_form_token(_settings(request), page.token, form.get("csrf")):
        log.warning("refused page form: cross-site or without this link's form token")
        raise PageRefused(403, "form", page.brand)
    return form


async def unsubscribe(request: Request) -> Response:
    page = await run_in_threadpool(_claim, request, False)
    found, settings = page.claim, _settings(request)
    prefs = preferences_url(settings, found.recipient_id, found.recipient_kind)
    if request.method != "POST":  # GET and HEAD (which Starlette routes here too) only show: scanners follow links
        return pages.page_response(pages.unsubscribe_form(page.brand, found.channel, str(request.url.path), prefs,
                                                          form_token(settings, page.token)))
    raw = await read_body(request, PAGE_FORM_LIMIT, _timeout(request))
    one_click = _is_one_click(raw, request.headers.get("content-type", ""))
    if not one_click:
        _check_page_form(request, page, _urlencoded(raw))
    now = _now(request)

    def apply() -> None:
        with session_scope(request.app.state.engine) as session:
            record_consent(
                session, recipient_kind=found.recipient_kind, recipient_id=found.recipient_id,
                channel=found.channel, purpose="marketing", action="opt_out",
                source="one_click" if one_click else "unsubscribe_page", occurred_at=now,
                evidence="RFC 8058 one-click POST" if one_click else "unsubscribe page form",
            )

    await run_in_threadpool(apply)
    if one_click:
        return PlainTextResponse("unsubscribed", headers=pages.SECURITY_HEADERS)
    return pages.page_response(pages.unsubscribed(page.brand, found.channel, prefs))


def _urlencoded(raw: bytes) -> dict[str, str]:
    return dict(parse_qsl(raw.decode("utf-8", errors="replace"), keep_blank_values=True))


def _is_one_click(raw: bytes, content_type: str) -> bool:
    """RFC 8058: the body `List-Unsubscribe=One-Click`, urlencoded or as a multipart field."""
    if content_type.startswith("multipart/form-data"):
        return b'name="List-Unsubscribe"\r\n\r\nOne-Click' in raw
    return _urlencoded(raw).get("List-Unsubscribe") == "One-Click"


async def preferences(request: Request) -> Response:
    page = await run_in_threadpool(_claim, request, True)
    kind, rid = page.claim.recipient_kind, page.claim.recipient_id
    form = None
    if request.method == "POST":
        form = _check_page_form(request, page, await read_form(request, PAGE_FORM_LIMIT, _timeout(request)))
    now = _now(request)

    def apply() -> dict[str, bool]:
        with session_scope(request.app.state.engine) as session:
            return _apply_preferences(session, kind, rid, form, now)

    states = await run_in_threadpool(apply)
    token = form_token(_settings(request), page.token)
    return pages.page_response(pages.preferences(page.brand, states, str(request.url.path), token, saved=form is not None))


def _apply_preferences(session: Session, kind: str, rid: int, form: dict[str, str] | None, now: datetime) -> dict[str, bool]:
    states = {ch: current_consent(session, kind, [rid], ch, "marketing")[rid].value == "opted_in" for ch in CHANNELS}
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


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def refused_page(request: Request, exc: Exception) -> Response:
    """PageRefused (and any HTTPException on a member page) as a page; elsewhere plain text."""
    assert isinstance(exc, HTTPException)
    if isinstance(exc, PageRefused) or request.url.path.startswith(PAGE_PREFIXES):
        brand = getattr(exc, "brand", None) or _brand(request, None, None)
        reason = getattr(exc, "reason", "invalid")
        return pages.page_response(pages.refused(brand, reason), status_code=exc.status_code)
    return PlainTextResponse(str(exc.detail), status_code=exc.status_code, headers=exc.headers)

