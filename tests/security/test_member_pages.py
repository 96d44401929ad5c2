"""The member pages behind signed links: never cached, framed, sniffed or leaked by Referer; a
preference POST from another site (or without the page's form token) changes nothing; no redirect
built from the Host header; and each page in the member's language with the program's name."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Engine

from audiences.db import session_scope
from channels.consent import current_consent
from channels.policy import ConsentState
from channels.settings import ChannelSettings
from channels.unsubscribe import preferences_url, unsubscribe_url
from channels.webhooks.app import create_app
from tests.security.people import BASE, NOW
from tests.security.test_webhook_endpoints import counts

PAGE_HEADERS = {
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
}


def local(url: str) -> str:
    return url.removeprefix(BASE)


def form_token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page's form carries no form token"
    return found.group(1)


def test_token_pages_are_not_cached_framed_sniffed_or_referred(client: Any, hook_settings: ChannelSettings) -> None:
    pages = {
        "unsubscribe page": client.get(local(unsubscribe_url(hook_settings, 1, "email"))),
        "preferences page": client.get(local(preferences_url(hook_settings, 1))),
        "refused link": client.get("/preferences/1/not-a-token"),
        "one-click answer": client.post(local(unsubscribe_url(hook_settings, 1, "sms")), data={"List-Unsubscribe": "One-Click"}),
    }
    for name, response in pages.items():
        got = {k: response.headers.get(k) for k in PAGE_HEADERS}
        assert got == PAGE_HEADERS, (name, got)
        assert "frame-ancestors 'none'" in response.headers.get("content-security-policy", ""), name


def test_a_preference_post_from_another_site_or_without_the_form_token_changes_nothing(client: Any, sqlite_engine: Engine, hook_settings: ChannelSettings) -> None:
    link = local(preferences_url(hook_settings, 1))
    token = form_token(client.get(link).text)
    attempts = {
        "no form token": client.post(link, data={"sms": "on"}),
        "forged form token": client.post(link, data={"sms": "on", "csrf": "A" * len(token)}),
        "another member's form token": client.post(local(preferences_url(hook_settings, 2)), data={"sms": "on", "csrf": token}),
        "cross-site origin": client.post(link, data={"sms": "on", "csrf": token}, headers={"Origin": "https://evil.example"}),
        "cross-site fetch": client.post(link, data={"sms": "on", "csrf": token}, headers={"Sec-Fetch-Site": "cross-site"}),
        "cross-site referer": client.post(link, data={"sms": "on", "csrf": token}, headers={"Referer": "https://evil.example/x"}),
    }
    assert {name: r.status_code for name, r in attempts.items()} == dict.fromkeys(attempts, 403)
    assert counts(sqlite_engine) == (0, 0, 0)
    # the member's own browser: our form, with its token (Origin "null" under no-referrer, or our own)
    for origin in ("null", BASE):
        ok = client.post(link, data={"sms": "on", "csrf": token}, headers={"Origin": origin})
        assert ok.status_code == 200, (origin, ok.text)
    with session_scope(sqlite_engine) as s:
        assert current_consent(s, "member", [1], "sms", "marketing") == {1: ConsentState.opted_in}


def test_no_redirect_is_built_from_the_host_header(client: Any) -> None:
    for path in ("/healthz/", "/webhooks/twilio/inbound/"):
        response = client.get(path, headers={"Host": "evil.example"}, follow_redirects=False)
        assert response.status_code not in (301, 302, 307, 308), (path, response.headers.get("location"))
        assert "evil.example" not in response.headers.get("location", "")


def test_member_pages_speak_the_members_language_with_the_programs_name(sqlite_engine: Engine, hook_settings: ChannelSettings) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    from tests.security.people import add_member

    with session_scope(sqlite_engine) as s:
        for member_id, locale in ((1, "en"), (2, "fr-CA"), (3, "de"), (4, "es"), (5, "pt-BR")):
            add_member(s, member_id, locale=locale)
    settings = hook_settings.model_copy(update={"program_name": "Café Points", "support_email": "help@cafe.example"})
    expected = {1: ("Unsubscribe", 'lang="en"'), 2: ("Se désabonner", 'lang="fr'), 3: ("Abmelden", 'lang="de"'),
                4: ("Darse de baja", 'lang="es"'), 5: ("Unsubscribe", 'lang="en"')}
    with TestClient(create_app(sqlite_engine, settings, clock=lambda: NOW), base_url=BASE) as c:
        for member_id, (button, lang) in expected.items():
            page = c.get(local(unsubscribe_url(settings, member_id, "email")))
            assert page.status_code == 200
            assert button in page.text and lang in page.text and "Café Points" in page.text, (member_id, page.text)
            assert "Loyalflow Rewards" not in page.text
        prefs = c.get(local(preferences_url(settings, 2)))
        assert "Enregistrer" in prefs.text and "Café Points" in prefs.text and "help@cafe.example" in prefs.text
