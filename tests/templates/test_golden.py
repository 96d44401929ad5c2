"""Golden renders per locale and program currency: amounts, dates and benefits in the member's language.

One file per (locale, currency) under tests/templates/golden/, holding the welcome email (money,
date), the tier-up benefits email (the tier's benefits), the 7-day points email (a date and a time
in one phrase) and the last-call SMS. Regenerate after an intended change with

    LOYALFLOW_UPDATE_GOLDEN=1 python -m pytest tests/templates/test_golden.py

and review the diff of tests/templates/golden/ like any other change.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from audiences.demo.benefits import localized
from audiences.demo.catalogue import TIERS
from audiences.settings import ProgramSettings
from journeys.context_extras import localized_text
from templates.library import TemplateLibrary
from templates.rendered import RenderedEmail, RenderedSms

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("LOYALFLOW_UPDATE_GOLDEN") == "1"
LOCALES = {"de": "Europe/Berlin", "fr": "Europe/Paris", "fr-CA": "America/Toronto", "es": "Europe/Madrid",
           "en-GB": "Europe/London", "ja": "Asia/Tokyo"}
CURRENCIES = ("EUR", "GBP")
GOLD = next(t for t in TIERS if t.code == "gold")


def context(locale: str, currency: str) -> dict[str, Any]:
    program = ProgramSettings(program_name="Maison Fidélité", support_email="aide@fidelite.example",
                              currency=currency).render_context()
    return {
        "recipient_id": 7, "first_name": "Zoë", "locale": locale, "time_zone": LOCALES[locale], "program": program,
        "links": {"unsubscribe_url": "https://r.example/u", "preferences_url": "https://r.example/p",
                  "app_url": "https://r.example/app"},
        "enrolled_at": datetime(2026, 11, 22, 18, 30, tzinfo=timezone.utc),
        "tier_code": "gold", "tier_name": "Gold", "has_device": 1,
        "benefits": [localized_text(localized(b), locale) for b in GOLD.benefits],
        "batch_id": 88, "points": 1250, "balance": 4820,
        "expires_at": datetime(2026, 12, 3, 22, 59, tzinfo=timezone.utc),
        "monetary": Decimal("412.50"),
    }


def email_part(title: str, email: RenderedEmail) -> str:
    return f"== {title}\nSubject: {email.subject}\nPreheader: {email.preheader}\n\n{email.text}\n"


def render_all(library: TemplateLibrary, locale: str, currency: str) -> str:
    ctx = context(locale, currency)
    parts = [
        email_part("welcome/email_welcome", library.render("welcome", "email_welcome", locale, ctx)),
        email_part("tier_up/email_benefits", library.render("tier_up", "email_benefits", locale, ctx)),
        email_part("points_expiring/email_7d", library.render("points_expiring", "email_7d", locale, ctx)),
    ]
    sms = library.render("points_expiring", "sms_1d", locale, ctx)
    assert isinstance(sms, RenderedSms)
    parts.append(f"== points_expiring/sms_1d ({sms.segments} segments, {sms.encoding})\n{sms.text}\n")
    return "\n".join(parts)


@pytest.mark.parametrize("currency", CURRENCIES)
@pytest.mark.parametrize("locale", sorted(LOCALES))
def test_golden_render(library: TemplateLibrary, locale: str, currency: str) -> None:
    path = GOLDEN / f"{locale}.{currency}.txt"
    got = render_all(library, locale, currency)
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"{path} is missing: run with LOYALFLOW_UPDATE_GOLDEN=1 to write it, then review it")
        path.write_text(got, encoding="utf-8")
    assert got == path.read_text(encoding="utf-8"), f"{path} differs (LOYALFLOW_UPDATE_GOLDEN=1 rewrites it)"


MONEY = {("de", "EUR"): "1,00\xa0€", ("de", "GBP"): "1,00\xa0£", ("en-GB", "GBP"): "£1.00", ("en-GB", "EUR"): "€1.00",
         ("fr", "EUR"): "1,00\xa0€", ("fr-CA", "EUR"): "1,00\xa0€", ("es", "EUR"): "1,00\xa0€", ("ja", "GBP"): "£1.00"}
DATES = {"de": "verfallen am Donnerstag, 3. Dezember 2026 um 23:59 Uhr.", "fr": "expirent le jeudi 3 décembre 2026 à 23:59.",
         "en-GB": "expire on Thursday, 3 December 2026 at 22:59.",
         "es": "caducan el jueves, 3 de diciembre de 2026 a las 23:59.",
         "fr-CA": "expirent le jeudi 3 décembre 2026 à 17 h 59.", "ja": "2026年12月4日金曜日 7:59に失効します。"}
BENEFITS = {"de": "Kostenloser Expressversand", "fr": "Livraison express offerte", "fr-CA": "Livraison express offerte",
            "es": "Envío exprés gratis", "en-GB": "Free express shipping", "ja": "お急ぎ便配送無料"}


@pytest.mark.parametrize(("locale", "currency"), sorted(MONEY))
def test_money_is_the_program_currency_in_the_member_locale(library: TemplateLibrary, locale: str,
                                                            currency: str) -> None:
    assert MONEY[(locale, currency)] in library.render("welcome", "email_welcome", locale,
                                                       context(locale, currency)).html


@pytest.mark.parametrize("locale", sorted(LOCALES))
def test_dates_say_the_day_once_and_benefits_are_translated(library: TemplateLibrary, locale: str) -> None:
    ctx = context(locale, "EUR")
    email = library.render("points_expiring", "email_7d", locale, ctx)
    assert DATES[locale] in email.text
    assert "/26" not in email.text and "12/3" not in email.text  # no short numeric date after the long one
    assert BENEFITS[locale] in library.render("tier_up", "email_benefits", locale, ctx).text


def test_a_language_without_templates_reads_english_dates_not_its_own(library: TemplateLibrary) -> None:
    """A member whose language has no template gets the fallback's language for dates too."""
    ctx = context("de", "EUR") | {"locale": "ko", "time_zone": "Asia/Seoul"}
    email = library.render("points_expiring", "email_7d", "ko", ctx)
    assert "Friday, December 4, 2026" in email.text and "년" not in email.text
