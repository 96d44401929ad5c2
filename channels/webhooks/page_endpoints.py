"""The member pages behind `loyalflow serve`: one-click unsubscribe (RFC 8058) and preferences, each
behind its own signed link, in the member's language; refusals rendered as pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from audiences.db import session_scope
from audiences.models import Member, Staff
from channels.consent import current_consent, record_consent
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
from channels.webhooks.bodies import (
    PAGE_FORM_LIMIT,
    read_body,
    read_form,
)
from channels.webhooks.page_text import page_text
from channels.webhooks.request_state import (
    log,
    now_of,
    settings_of,
    timeout_of,
)
from templates.vocabulary import CHANNELS

PAGE_PREFIXES = ("/unsubscribe/", "/preferences/")


class PageRefused(HTTPException):
    """A member page refused: rendered as a page in the member's language (see app.py)."""

    def __init__(self, status_code: int, reason: str, brand: pages.Branding | None = None) -> None:
        super().__init__(status_code, reason)
        self.reason = reason
        self.brand = brand


@dataclass(frozen=True, slots=True)
class PageClaim:
    claim: UnsubscribeClaim
    token: str
    brand: pages.Branding


def _brand(request: Request, kind: str | None, recipient_id: int | None) -> pages.Branding:
    settings = settings_of(request)
    locale = None
    if recipient_id is not None and kind in ("member", "staff"):
        model = Member if kind == "member" else Staff
        with session_scope(request.app.state.engine) as session:
            person = session.get(model, recipient_id)
            locale = person.locale if person is not None else None
    lang, text = page_text(locale)
    return pages.Branding(settings.program_name, settings.support_email or settings.email_from, lang, text)


def _claim(request: Request, want_all: bool) -> PageClaim:
    settings = settings_of(request)
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
    ours = urlsplit(settings_of(request).public_base_url)
    for header in ("origin", "referer"):
        value = request.headers.get(header)
        if value and value != "null":
            seen = urlsplit(value)
            if (seen.scheme, seen.netloc) != (ours.scheme, ours.netloc):
                return False
    return True


def _check_page_form(request: Request, page: PageClaim, form: dict[str, str]) -> dict[str, str]:
    """The page's own form, checked: from our site, with the form token of this very link."""
    if not _same_site(request) or not valid_form_token(settings_of(request), page.token, form.get("csrf")):
        log.warning("refused page form: cross-site or without this link's form token")
        raise PageRefused(403, "form", page.brand)
    return form


async def unsubscribe(request: Request) -> Response:
    page = await run_in_threadpool(_claim, request, False)
    found, settings = page.claim, settings_of(request)
    prefs = preferences_url(settings, found.recipient_id, found.recipient_kind)
    if request.method != "POST":  # GET and HEAD (which Starlette routes here too) only show: scanners follow links
        return pages.page_response(pages.unsubscribe_form(page.brand, found.channel, str(request.url.path), prefs,
                                                          form_token(settings, page.token)))
    raw = await read_body(request, PAGE_FORM_LIMIT, timeout_of(request))
    one_click = _is_one_click(raw, request.headers.get("content-type", ""))
    if not one_click:
        _check_page_form(request, page, _urlencoded(raw))
    now = now_of(request)

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
        form = _check_page_form(request, page, await read_form(request, PAGE_FORM_LIMIT, timeout_of(request)))
    now = now_of(request)

    def apply() -> dict[str, bool]:
        with session_scope(request.app.state.engine) as session:
            return _apply_preferences(session, kind, rid, form, now)

    states = await run_in_threadpool(apply)
    token = form_token(settings_of(request), page.token)
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


async def refused_page(request: Request, exc: Exception) -> Response:
    """PageRefused (and any HTTPException on a member page) as a page; elsewhere plain text."""
    assert isinstance(exc, HTTPException)
    if isinstance(exc, PageRefused) or request.url.path.startswith(PAGE_PREFIXES):
        brand = getattr(exc, "brand", None) or _brand(request, None, None)
        reason = getattr(exc, "reason", "invalid")
        return pages.page_response(pages.refused(brand, reason), status_code=exc.status_code)
    return PlainTextResponse(str(exc.detail), status_code=exc.status_code, headers=exc.headers)
