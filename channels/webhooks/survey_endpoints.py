"""Survey and "I've read it" pages behind `loyalflow serve`, each behind a signed link (channels/surveys.py).

- GET /survey/{token}            the scale, one link per score (for a push or SMS that links without a score)
- GET /survey/{token}/{score}    one tap: records the score (a later tap updates it), offers a comment form
- POST /survey/{token}/{score}   the comment form (same site, with this link's form token)
- GET /read/{token}              records a staff member's read of one bulletin, once

A tampered, foreign-key or expired token is refused with a page (403) and records nothing; a score
outside the signed scale is refused (400). HEAD only shows: link scanners send it.
"""

from __future__ import annotations

from html import escape

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from audiences.db import session_scope
from audiences.models import Member, Staff
from channels.errors import ChannelSettingsError
from channels.surveys import (
    READ,
    SURVEY,
    InvalidSurveyLink,
    LinkClaim,
    form_token,
    link_secret,
    read_token,
    record_answer,
    record_read,
    valid_form_token,
)
from channels.webhooks import pages
from channels.webhooks.bodies import PAGE_FORM_LIMIT, read_form
from channels.webhooks.page_endpoints import PageRefused, _same_site
from channels.webhooks.page_text import SurveyText, page_text, survey_text
from channels.webhooks.request_state import log, now_of, settings_of, timeout_of

SCORE_STYLE = ("display:inline-block;min-width:2.2rem;margin:.15rem;padding:.5rem 0;text-align:center;"
               "border:1px solid #7c3aed;border-radius:6px;color:#7c3aed;text-decoration:none;font-weight:bold")


def _secret(request: Request) -> str:
    try:
        return link_secret(settings_of(request))
    except ChannelSettingsError:
        raise PageRefused(503, "unconfigured") from None


def _claim(request: Request, kind: str) -> tuple[LinkClaim, str]:
    secret = _secret(request)
    try:
        claim = read_token(secret, request.path_params["token"], now_of(request))
    except InvalidSurveyLink as exc:
        log.warning("refused %s link: %s", "survey" if kind == SURVEY else "read", exc.code)
        raise PageRefused(403, exc.code) from None
    if claim.kind != kind:
        raise PageRefused(403, "invalid")
    return claim, secret


def _person(claim: LinkClaim) -> tuple[type, int]:
    return (Member if claim.recipient_kind == "member" else Staff), claim.recipient_id


def _brand(request: Request, locale: str | None) -> tuple[pages.Branding, SurveyText]:
    settings = settings_of(request)
    lang, text = page_text(locale)
    return pages.Branding(settings.program_name, settings.support_email or settings.email_from, lang, text), \
        survey_text(locale)


def _score(request: Request, claim: LinkClaim) -> int:
    raw = request.path_params["score"]
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 2) or not claim.scale_min <= int(raw) <= claim.scale_max:
        raise PageRefused(400, "invalid")
    return int(raw)


def _question(words: SurveyText, claim: LinkClaim, brand: pages.Branding) -> str:
    question = words.nps_question if (claim.scale_min, claim.scale_max) == (0, 10) else words.pulse_question
    return escape(question).format(program=escape(brand.program))


def _scale(base_path: str, claim: LinkClaim, words: SurveyText, chosen: int | None = None) -> str:
    links = "".join(
        f'<a style="{SCORE_STYLE}{";background:#7c3aed;color:#fff" if n == chosen else ""}" '
        f'href="{escape(base_path)}/{n}">{n}</a>' for n in range(claim.scale_min, claim.scale_max + 1))
    return (f"<p>{links}</p><p><small>{claim.scale_min} = {escape(words.low)} · "
            f"{claim.scale_max} = {escape(words.high)}</small></p>")


def _lookup_locale(request: Request, claim: LinkClaim) -> str | None:
    model, rid = _person(claim)
    with session_scope(request.app.state.engine) as session:
        person = session.get(model, rid)
        return person.locale if person is not None else None


async def survey_scale(request: Request) -> Response:
    claim, _ = _claim(request, SURVEY)
    brand, words = _brand(request, await run_in_threadpool(_lookup_locale, request, claim))
    base = f"/survey/{request.path_params['token']}"
    return pages.page_response(pages.page(brand, _question(words, claim, brand), _scale(base, claim, words)))


async def survey_answer(request: Request) -> Response:
    claim, secret = _claim(request, SURVEY)
    score = _score(request, claim)
    token = request.path_params["token"]
    comment: str | None = None
    if request.method == "POST":
        form = await read_form(request, PAGE_FORM_LIMIT, timeout_of(request))
        if not _same_site(request) or not valid_form_token(secret, token, form.get("csrf")):
            log.warning("refused survey form: cross-site or without this link's form token")
            raise PageRefused(403, "form")
        comment = form.get("comment") or None
    now = now_of(request)

    def apply() -> tuple[str | None, str | None]:
        model, rid = _person(claim)
        with session_scope(request.app.state.engine) as session:
            person = session.get(model, rid)
            if request.method == "HEAD":
                return (person.locale if person else None), None
            answer = record_answer(session, claim, score, now, channel="web", comment=comment)
            return (person.locale if person else None), answer.comment

    locale, saved_comment = await run_in_threadpool(apply)
    brand, words = _brand(request, locale)
    base = f"/survey/{token}"
    note = f"<p><strong>{escape(words.comment_saved)}</strong></p>" if request.method == "POST" else ""
    body = (
        f"<p>{escape(words.your_score).format(score=score, max=claim.scale_max)}</p>{note}"
        f'<form method="post" action="{escape(base)}/{score}">'
        f'<input type="hidden" name="csrf" value="{escape(form_token(secret, token))}">'
        f'<label>{escape(words.comment_label)}<br><textarea name="comment" rows="4" cols="40" maxlength="2000">'
        f"{escape(saved_comment or '')}</textarea></label>"
        f'<button type="submit">{escape(words.comment_button)}</button></form>'
        f"<p>{escape(words.change_hint)}</p>{_scale(base, claim, words, chosen=score)}"
    )
    return pages.page_response(pages.page(brand, escape(words.thanks_title), body))


async def bulletin_read(request: Request) -> Response:
    claim, _ = _claim(request, READ)
    now = now_of(request)

    def apply() -> str | None:
        with session_scope(request.app.state.engine) as session:
            person = session.get(Staff, claim.recipient_id)
            if request.method != "HEAD":
                record_read(session, claim, now)
            return person.locale if person is not None else None

    brand, words = _brand(request, await run_in_threadpool(apply))
    return pages.page_response(pages.page(brand, escape(words.read_title), f"<p>{escape(words.read_body)}</p>"))


def survey_routes() -> list[Route]:
    return [
        Route("/survey/{token}", survey_scale, methods=["GET"]),
        Route("/survey/{token}/{score}", survey_answer, methods=["GET", "POST"]),
        Route("/read/{token}", bulletin_read, methods=["GET"]),
    ]
