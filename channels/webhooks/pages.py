"""The few HTML pages a member sees: unsubscribe confirmation and channel preferences.

Plain, self-contained HTML with every dynamic value escaped; no scripts, so they work in any
mail client's browser and behind strict content policies. Every page is sent with headers that
keep its signed URL out of caches, Referer headers and other sites' frames (`page_response`).
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from starlette.responses import HTMLResponse

from channels.webhooks.page_text import PageText

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}"
    "button{font-size:1rem;padding:.6rem 1.2rem}label{display:block;margin:.6rem 0}"
)
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
}
"""The URLs carry a signed token: never cached, never sent on as a Referer, never framed (clickjacking)."""


@dataclass(frozen=True, slots=True)
class Branding:
    program: str
    support: str | None
    lang: str
    text: PageText


def page_response(html: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def _fill(template: str, brand: Branding, channel: str = "") -> str:
    return escape(template).format(program=escape(brand.program), channel=escape(channel), support=escape(brand.support or ""))


def page(brand: Branding, title: str, body: str, status_note: str = "") -> str:
    footer = f"<p><small>{_fill(brand.text.support, brand)}</small></p>" if brand.support else ""
    return (
        f'<!doctype html><html lang="{escape(brand.lang)}"><head><meta charset="utf-8"><title>{title}</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{STYLE}</style></head>'
        f"<body><h1>{title}</h1>{status_note}{body}{footer}</body></html>"
    )


def unsubscribe_form(brand: Branding, channel: str, action_url: str, preferences_url: str, form_token: str) -> str:
    words = brand.text
    name = words.channels.get(channel, channel)
    return page(
        brand,
        _fill(words.unsubscribe_title, brand),
        f"<p>{_fill(words.unsubscribe_question, brand, name)}</p>"
        f'<form method="post" action="{escape(action_url)}">'
        f'<input type="hidden" name="csrf" value="{escape(form_token)}">'
        f"<button type=\"submit\">{escape(words.unsubscribe_button)}</button></form>"
        f'<p><a href="{escape(preferences_url)}">{escape(words.choose_instead)}</a></p>',
    )


def unsubscribed(brand: Branding, channel: str, preferences_url: str) -> str:
    words = brand.text
    name = words.channels.get(channel, channel)
    return page(
        brand,
        escape(words.unsubscribed_title),
        f"<p>{_fill(words.unsubscribed_body, brand, name)}</p>"
        f'<p><a href="{escape(preferences_url)}">{escape(words.manage_all)}</a></p>',
    )


def preferences(brand: Branding, states: dict[str, bool], action_url: str, form_token: str, saved: bool = False) -> str:
    words = brand.text
    boxes = "".join(
        f'<label><input type="checkbox" name="{ch}" value="on"{" checked" if on else ""}> '
        f"{escape(words.channel_labels[ch])}</label>"
        for ch, on in states.items()
    )
    note = f"<p><strong>{escape(words.saved)}</strong></p>" if saved else ""
    return page(
        brand,
        _fill(words.preferences_title, brand),
        f"<p>{escape(words.preferences_intro)}</p>"
        f'<form method="post" action="{escape(action_url)}"><input type="hidden" name="csrf" value="{escape(form_token)}">'
        f'{boxes}<button type="submit">{escape(words.save)}</button></form>',
        note,
    )


def refused(brand: Branding, reason: str) -> str:
    words = brand.text
    return page(brand, escape(words.refused_title),
                f"<p>{escape(words.reasons.get(reason, words.reasons['invalid']))} {escape(words.refused_hint)}</p>")
