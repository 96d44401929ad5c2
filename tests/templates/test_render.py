"""Rendering the real templates: every channel, locale fallback, Babel formatting, hostile names."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from html.parser import HTMLParser

import pytest
from markupsafe import escape

from templates import (
    RenderedEmail,
    RenderedPush,
    RenderedSms,
    TemplateError,
    TemplateNotFound,
)
from templates.library import TemplateLibrary
from templates.push import payload_size
from templates.samples import HOSTILE_NAMES, sample_context

CONTRACT_TEMPLATES = {
    ("welcome", "email_welcome"): "email", ("welcome", "push_getting_started"): "push", ("welcome", "sms_tips"): "sms",
    ("points_expiring", "email_30d"): "email", ("points_expiring", "email_7d"): "email",
    ("points_expiring", "push_1d"): "push", ("points_expiring", "sms_1d"): "sms",
    ("tier_up", "email_congrats"): "email", ("tier_up", "push_congrats"): "push", ("tier_up", "email_benefits"): "email",
    ("tier_up", "email_nps"): "email", ("tier_up", "sms_nps"): "sms", ("tier_up", "email_recovery"): "email",
    ("win_back", "email_offer"): "email", ("win_back", "sms_offer"): "sms", ("win_back", "email_offer_urgent"): "email",
    ("broadcasts", "newsletter"): "email", ("broadcasts", "newsletter_sms"): "sms",
    ("staff_bulletin", "email_weekly"): "email",
    ("first_purchase", "email_thanks"): "email", ("first_purchase", "push_points_reminder"): "push",
    ("first_purchase", "sms_points_reminder"): "sms",
}
LOCALES = ("en", "fr", "fr-CA", "de", "es")


def test_every_contract_template_exists_with_its_channel(library: TemplateLibrary) -> None:
    assert set(library.templates()) == set(CONTRACT_TEMPLATES)
    for (journey, step), channel in CONTRACT_TEMPLATES.items():
        assert library.exists(journey, step)
        assert library.channel_of(journey, step) == channel
        assert {"en", "fr", "de", "es"} <= set(library.locales(journey, step))
    assert not library.exists("welcome", "email_nope")


def test_locale_fallback_chain(library: TemplateLibrary) -> None:
    # fr-CA has its own welcome email, falls back to fr for the 30-day email, to en for an unknown locale.
    assert library.resolve("welcome", "email_welcome", "fr-CA").locale == "fr-CA"
    assert library.resolve("points_expiring", "email_30d", "fr-CA").locale == "fr"
    assert library.resolve("points_expiring", "email_30d", "fr_ca").locale == "fr"
    assert library.resolve("points_expiring", "email_30d", "pt-BR").locale == "en"
    assert library.resolve("points_expiring", "email_30d", None).locale == "en"
    fr_ca = library.render("welcome", "email_welcome", "fr-CA", sample_context("welcome", "fr-CA"))
    assert isinstance(fr_ca, RenderedEmail) and "courriel" in fr_ca.text


def test_fallback_still_formats_in_the_recipient_locale(library: TemplateLibrary) -> None:
    """fr-CA uses the fr file but Canadian formats and the member's own time zone."""
    context = sample_context("points_expiring", "fr-CA")
    context["expires_at"] = datetime(2026, 12, 1, 3, 0, tzinfo=timezone.utc)  # still Nov 30 in Toronto
    context["time_zone"] = "America/Toronto"
    email = library.render("points_expiring", "email_30d", "fr-CA", context)
    assert "30 novembre 2026" in email.subject
    context["time_zone"] = "Europe/Paris"
    assert "1 décembre 2026" in library.render("points_expiring", "email_30d", "fr", context).subject


@pytest.mark.parametrize(
    ("locale", "currency", "points", "money"),
    [("en", "USD", "1,250", "$1.00"), ("fr", "EUR", "1\u202f250", "1,00\xa0€"), ("de", "EUR", "1.250", "1,00\xa0€"),
     ("es", "EUR", "1.250", "1,00\xa0€"), ("de", "GBP", "1.250", "1,00\xa0£"), ("en-GB", "GBP", "1,250", "£1.00"),
     ("en-GB", "EUR", "1,250", "€1.00")],
)
def test_numbers_follow_the_locale_and_money_the_program_currency(
        library: TemplateLibrary, monkeypatch: pytest.MonkeyPatch, locale: str, currency: str, points: str,
        money: str) -> None:
    # the currency is the program's (LOYALFLOW_CURRENCY), not guessed from the member's locale: the old
    # samples showed "1,00 €" in preview while every real send said "1,00 $"
    monkeypatch.setenv("LOYALFLOW_CURRENCY", currency)
    email = library.render("points_expiring", "email_7d", locale, sample_context("points_expiring", locale))
    assert points in email.subject
    welcome = library.render("welcome", "email_welcome", locale, sample_context("welcome", locale))
    assert money in welcome.text


@pytest.mark.parametrize(("journey", "step"), sorted(CONTRACT_TEMPLATES))
@pytest.mark.parametrize("locale", LOCALES)
def test_every_template_renders_in_every_locale(library: TemplateLibrary, journey: str, step: str, locale: str) -> None:
    context = sample_context(journey, locale)
    rendered = library.render(journey, step, locale, context)
    purpose = library.purpose_of(journey, step)
    if isinstance(rendered, RenderedEmail):
        assert rendered.subject and rendered.preheader and "{{" not in rendered.html and "{{" not in rendered.text
        assert f'lang="{library.resolve(journey, step, locale).locale}"' in rendered.html
        assert str(escape(rendered.preheader)) in rendered.html  # as the hidden preview text
        assert "Camille" in rendered.text or journey == "staff_bulletin"
        if purpose == "marketing":
            for url in (context["links"]["unsubscribe_url"], context["links"]["preferences_url"]):
                assert f'href="{url}"' in rendered.html
                assert url in rendered.text
        assert "https://fonts.googleapis.com" not in rendered.html
    elif isinstance(rendered, RenderedSms):
        assert "STOP" in rendered.text and rendered.segments >= 1
    else:
        assert isinstance(rendered, RenderedPush) and rendered.title and rendered.body
        assert all(isinstance(v, str) and v == v.strip() for v in rendered.data.values())
        assert payload_size(rendered) <= 4096


def test_missing_first_name_uses_a_fallback(library: TemplateLibrary) -> None:
    context = sample_context("points_expiring", "en", first_name=None)
    email = library.render("points_expiring", "email_7d", "en", context)
    assert "None" not in email.text and "there" in email.text


class _TextAndAttrs(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.script_tags = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.script_tags += tag == "script"

    def handle_data(self, data: str) -> None:
        self.text.append(data)


MARKER = "Qxmarkerq"


@pytest.mark.parametrize("name", HOSTILE_NAMES)
@pytest.mark.parametrize(("journey", "step"), sorted(CONTRACT_TEMPLATES))
def test_hostile_names_render_escaped_and_intact(library: TemplateLibrary, journey: str, step: str, name: str) -> None:
    """Wherever a template shows the first name, a hostile one shows intact and never as markup."""
    plain = library.render(journey, step, "en", sample_context(journey, "en", first_name=MARKER))
    rendered = library.render(journey, step, "en", sample_context(journey, "en", first_name=name))
    fields = {"email": ("subject", "preheader", "html", "text"), "sms": ("text",), "push": ("title", "body")}
    used = [f for f in fields[library.channel_of(journey, step)] if MARKER in getattr(plain, f)]
    if not used:
        pytest.skip(f"{journey}/{step} does not show the first name")
    for field in used:
        value = getattr(rendered, field)
        if field == "html":
            parser = _TextAndAttrs()
            parser.feed(value)
            assert parser.script_tags == 0, "the name became markup"
            assert name in "".join(parser.text), "the name is not intact once the HTML is parsed"
            assert "<script>" not in value and str(escape(name)) in value
        else:
            assert name in value, f"{field} lost or altered the name"  # plain text: intact, not entity-encoded
    if isinstance(rendered, RenderedSms):
        assert rendered.encoding == ("GSM-7" if name.startswith("<script>") else "UCS-2")
    if isinstance(rendered, RenderedPush):
        assert json.loads(json.dumps({"body": rendered.body}))["body"] == rendered.body


def test_missing_variable_names_file_and_line(library: TemplateLibrary) -> None:
    context = sample_context("points_expiring", "de")
    del context["balance"]
    with pytest.raises(TemplateError) as caught:
        library.render("points_expiring", "email_7d", "de", context)
    error = caught.value
    path = library.resolve("points_expiring", "email_7d", "de").path
    assert error.path.endswith("points_expiring/email_7d.de.mjml")
    assert "balance" in error.message and "undefined" in error.message
    assert "{{ balance|number }}" in path.read_text().split("\n")[error.line - 1]
    assert str(error).startswith(f"{error.path}:{error.line}: ")


def test_missing_variable_in_subject_and_push(library: TemplateLibrary) -> None:
    context = sample_context("points_expiring", "en")
    del context["points"]
    with pytest.raises(TemplateError) as caught:
        library.render("points_expiring", "email_7d", "en", context)
    assert caught.value.line == 3  # the subject line of the front matter
    with pytest.raises(TemplateError) as caught:
        library.render("points_expiring", "push_1d", "en", context)
    path = library.resolve("points_expiring", "push_1d", "en").path
    assert '"title"' in path.read_text().split("\n")[caught.value.line - 1]


def test_unknown_template_is_a_clear_error(library: TemplateLibrary) -> None:
    with pytest.raises(TemplateNotFound, match=r"no template welcome/nope \(known: broadcasts/newsletter, broadcasts/newsletter_sms, first_purchase/email_thanks"):
        library.render("welcome", "nope", "en", {})


def test_plain_text_part_reads_like_the_email(library: TemplateLibrary) -> None:
    context = sample_context("tier_up", "en")
    email = library.render("tier_up", "email_congrats", "en", context)
    assert "- Free shipping on every order" in email.text
    assert "Discover my benefits (https://rewards.example.com/app/tier)" in email.text
    assert email.preheader not in email.text  # the hidden preview text is not part of the body
    assert not re.search(r"<[a-z]", email.text)


def test_naive_datetime_is_refused(library: TemplateLibrary) -> None:
    context = sample_context("points_expiring", "en")
    context["expires_at"] = datetime(2026, 11, 30, 12, 0)
    with pytest.raises(TemplateError, match="naive datetime"):
        library.render("points_expiring", "email_7d", "en", context)


def test_fallback_chain_with_missing_default(make_library) -> None:  # noqa: ANN001
    root = make_library({"j/sms_x.fr.sms.txt": "---\npurpose: transactional\n---\nBonjour\n"})
    lib = TemplateLibrary.load(root)
    assert lib.render("j", "sms_x", "fr-CA", {}).text == "Bonjour"
    with pytest.raises(TemplateNotFound, match=r"no file for locale 'de' and no fallback \(tried de, en\)"):
        lib.render("j", "sms_x", "de", {})


def test_mjml_is_compiled_once_not_per_recipient(monkeypatch: pytest.MonkeyPatch) -> None:
    lib = TemplateLibrary.load()
    calls: list[str] = []
    import templates.mjml_compiler as compiler

    monkeypatch.setattr(compiler.mjml, "mjml2html", lambda *a, **k: calls.append("compile") or "")
    for name in ("Ana", "Ben", "Chloé"):
        for locale in LOCALES:
            email = lib.render("points_expiring", "email_7d", locale, sample_context("points_expiring", locale, first_name=name))
            assert name in email.text
    assert calls == []
    file = lib.resolve("points_expiring", "email_7d", "de")
    assert lib.compiled(file) is lib.compiled(file)


@pytest.mark.parametrize(
    ("time_zone", "expected"),
    [("America/Los_Angeles", "Mar 7, 2027, 11:30:00\u202fPM"), ("Europe/Berlin", "Mar 8, 2027, 8:30:00\u202fAM"),
     ("Not/AZone", "Mar 8, 2027, 7:30:00\u202fAM")],
)
def test_datetimes_show_in_the_recipient_time_zone(time_zone: str, expected: str) -> None:
    from templates.environment import text_env

    template = text_env().from_string("{{ at|datetime }}")
    at = datetime(2027, 3, 8, 7, 30, tzinfo=timezone.utc)
    assert template.render(at=at, locale="en", time_zone=time_zone) == expected
