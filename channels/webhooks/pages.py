"""The few HTML pages a member sees: unsubscribe confirmation and channel preferences.

Plain, self-contained HTML with every dynamic value escaped; no scripts, so they work in any
mail client's browser and behind strict content policies.
"""

from __future__ import annotations

from html import escape

CHANNEL_NAMES = {"email": "Email", "sms": "Text messages (SMS)", "push": "App notifications"}

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}"
    "button{font-size:1rem;padding:.6rem 1.2rem}label{display:block;margin:.6rem 0}"
)


def page(title: str, body: str, status_note: str = "") -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{STYLE}</style></head>'
        f"<body><h1>{escape(title)}</h1>{status_note}{body}</body></html>"
    )


def unsubscribe_form(program: str, channel: str, action_url: str, preferences_url: str) -> str:
    name = CHANNEL_NAMES.get(channel, channel)
    return page(
        f"Unsubscribe from {program}",
        f"<p>Stop receiving marketing {escape(name.lower())} from {escape(program)}?</p>"
        f'<form method="post" action="{escape(action_url)}"><button type="submit">Unsubscribe</button></form>'
        f'<p><a href="{escape(preferences_url)}">Choose what you receive instead</a></p>',
    )


def unsubscribed(program: str, channel: str, preferences_url: str) -> str:
    name = CHANNEL_NAMES.get(channel, channel)
    return page(
        "You are unsubscribed",
        f"<p>You will no longer receive marketing {escape(name.lower())} from {escape(program)}. "
        "Messages about your account (such as points expiring) may still be sent.</p>"
        f'<p><a href="{escape(preferences_url)}">Manage all your preferences</a></p>',
    )


def preferences(program: str, states: dict[str, bool], action_url: str, saved: bool = False) -> str:
    boxes = "".join(
        f'<label><input type="checkbox" name="{ch}" value="on"{" checked" if on else ""}> '
        f"{escape(CHANNEL_NAMES[ch])}</label>"
        for ch, on in states.items()
    )
    note = "<p><strong>Your preferences are saved.</strong></p>" if saved else ""
    return page(
        f"Your {program} preferences",
        f"<p>Offers and news we may send you:</p>"
        f'<form method="post" action="{escape(action_url)}">{boxes}<button type="submit">Save</button></form>',
        note,
    )


def refused(reason: str) -> str:
    return page("This link cannot be used", f"<p>{escape(reason)}. Please use the latest link from one of our messages.</p>")
