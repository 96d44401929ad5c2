"""A static HTML gallery of every template in every locale, for marketers to review without tooling.

Emails are shown in frames as a mail client would; SMS as a message bubble on a phone; push as a
lock-screen notification. Plain files, no script and nothing remote: open `index.html` anywhere.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from templates.errors import TemplateError
from templates.library import TemplateLibrary
from templates.locales import SUPPORTED_LOCALES
from templates.rendered import RenderedEmail, RenderedPush, RenderedSms
from templates.samples import sample_context

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0; background: #eef0f4; color: #111827; }
header { background: #4c1d95; color: #fff; padding: 16px 24px; }
header h1 { margin: 0; font-size: 22px; }
nav { display: flex; flex-wrap: wrap; gap: 4px 12px; padding: 8px 24px; background: #ddd6fe; font-size: 13px; }
nav a { margin-right: 12px; color: #4c1d95; }
section.template { padding: 16px 24px; border-bottom: 1px solid #d1d5db; }
section.template h2 { font-size: 18px; margin: 0 0 4px; }
.meta { color: #6b7280; font-size: 13px; margin-bottom: 12px; }
.row { display: flex; flex-wrap: wrap; gap: 16px; }
.card { background: #fff; border-radius: 10px; box-shadow: 0 1px 3px rgba(0,0,0,.15); padding: 12px; width: 380px; }
.card h3 { margin: 0 0 8px; font-size: 14px; color: #4c1d95; }
.email-head { font-size: 13px; margin-bottom: 8px; }
.email-head .subject { font-weight: bold; }
.email-head .preheader { color: #6b7280; }
iframe { width: 100%; height: 520px; border: 1px solid #e5e7eb; border-radius: 6px; background: #fff; }
details { font-size: 12px; margin-top: 6px; }
pre { white-space: pre-wrap; font-size: 12px; background: #f9fafb; padding: 8px; }
.phone { width: 300px; margin: 0 auto; background: #111827; border-radius: 36px; padding: 40px 14px; }
.screen { background: #f3f4f6; border-radius: 18px; min-height: 240px; padding: 14px; }
.bubble { background: #e5e7eb; border-radius: 18px 18px 18px 4px; padding: 10px 12px; font-size: 14px; line-height: 1.35; max-width: 85%; white-space: pre-wrap; overflow-wrap: anywhere; }
.sender { text-align: center; font-size: 12px; color: #6b7280; margin-bottom: 8px; }
.lock { background: linear-gradient(160deg, #312e81, #7c3aed); }
.clock { color: #fff; text-align: center; font-size: 44px; font-weight: 200; margin: 8px 0 18px; }
.notification { background: rgba(255,255,255,.85); border-radius: 14px; padding: 10px 12px; font-size: 13px; }
.notification .app { font-size: 11px; color: #4b5563; text-transform: uppercase; letter-spacing: .04em; }
.notification .title { font-weight: 600; margin: 2px 0; }
.facts { font-size: 12px; color: #374151; margin-top: 8px; }
.error { color: #b91c1c; font-size: 13px; white-space: pre-wrap; }
"""

ContextFactory = Callable[[str, str], dict[str, Any]]


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _email_card(rendered: RenderedEmail, file_link: str) -> str:
    return (
        f'<div class="email-head"><div class="subject" dir="auto">{_e(rendered.subject)}</div>'
        f'<div class="preheader" dir="auto">{_e(rendered.preheader)}</div></div>'
        f'<iframe title="{_e(rendered.subject)}" sandbox="" srcdoc="{_e(rendered.html)}"></iframe>'
        f'<details><summary>Plain-text part</summary><pre dir="auto">{_e(rendered.text)}</pre></details>'
        f'<div class="facts"><a href="{_e(file_link)}">Open the email alone</a></div>'
    )


def _sms_card(rendered: RenderedSms, program: str) -> str:
    return (
        f'<div class="phone"><div class="screen"><div class="sender">{_e(program)}</div>'
        f'<div class="bubble" dir="auto">{_e(rendered.text)}</div></div></div>'
        f'<div class="facts">{_e(rendered.encoding)} · {rendered.segments} segment{"s" if rendered.segments != 1 else ""}'
        f' · {len(rendered.text)} characters</div>'
    )


def _push_card(rendered: RenderedPush, program: str, size: int) -> str:
    data = ", ".join(f"{k}={v}" for k, v in rendered.data.items())
    return (
        f'<div class="phone"><div class="screen lock"><div class="clock">9:41</div>'
        f'<div class="notification"><div class="app">{_e(program)}</div>'
        f'<div class="title" dir="auto">{_e(rendered.title)}</div><div dir="auto">{_e(rendered.body)}</div></div></div></div>'
        f'<div class="facts">deep link: {_e(rendered.deep_link or "none")}<br>data: {_e(data or "none")}<br>'
        f"payload: {size} of 4096 bytes</div>"
    )


def write_gallery(
    out_dir: str | Path,
    library: TemplateLibrary | None = None,
    *,
    locales: Iterable[str] = SUPPORTED_LOCALES,
    context_for: ContextFactory | None = None,
) -> Path:
    """Write `index.html` (and one file per email) into `out_dir`; returns the index path."""
    from templates.push import payload_size

    lib = library or TemplateLibrary.load()
    make_context = context_for or (lambda journey, locale: sample_context(journey, locale))
    out = Path(out_dir)
    (out / "email").mkdir(parents=True, exist_ok=True)
    locales = list(locales)
    sections, nav = [], []
    for journey, step in lib.templates():
        anchor = f"{journey}--{step}"
        nav.append(f'<a href="#{_e(anchor)}">{_e(journey)}/{_e(step)}</a>')
        channel = lib.channel_of(journey, step)
        cards = []
        for locale in locales:
            context = make_context(journey, locale)
            program = (context.get("program") or {}).get("name", "")
            try:
                source = lib.resolve(journey, step, locale)
                rendered = lib.render(journey, step, locale, context)
            except TemplateError as exc:
                cards.append(f'<div class="card"><h3>{_e(locale)}</h3><div class="error">{_e(exc)}</div></div>')
                continue
            note = "" if source.locale == locale else f" <small>(falls back to {_e(source.locale)})</small>"
            if isinstance(rendered, RenderedEmail):
                name = f"{journey}__{step}__{locale}.html"
                (out / "email" / name).write_text(rendered.html, encoding="utf-8")
                body = _email_card(rendered, f"email/{name}")
            elif isinstance(rendered, RenderedSms):
                body = _sms_card(rendered, program)
            else:
                body = _push_card(rendered, program, payload_size(rendered))
            cards.append(f'<div class="card"><h3>{_e(locale)}{note}</h3>{body}</div>')
        sections.append(
            f'<section class="template" id="{_e(anchor)}"><h2>{_e(journey)} / {_e(step)}</h2>'
            f'<div class="meta">{_e(channel)} · {_e(lib.purpose_of(journey, step))}</div>'
            f'<div class="row">{"".join(cards)}</div></section>'
        )
    index = out / "index.html"
    index.write_text(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>loyalflow template gallery</title><style>{_CSS}</style></head><body>"
        f"<header><h1>loyalflow template gallery</h1></header><nav>{''.join(nav)}</nav>"
        f"{''.join(sections)}</body></html>",
        encoding="utf-8",
    )
    return index
