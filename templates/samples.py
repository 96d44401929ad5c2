"""Sample render contexts, generated from a journey's render-context contract.

Used by the template check, `loyalflow preview` and the gallery. Given a contract
(templates/context_contract.py), a sample holds exactly the names the contract declares: a hand-picked
value where one exists below (for the shipped journeys' nicer figures), else a typed value generated
from the declared kind. So a template using an undeclared name fails the check, and a new declared
column needs no edit here. Fixed values (no clock) so every check run renders the same thing.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from audiences.settings import program_context
from templates.context_contract import BASE_CONTEXT, ContextContract
from templates.locales import normalize_locale

HOSTILE_NAMES = ("<script>alert(1)</script>", "Zoë 🎉✨", "مريم", "שָׁלוֹם & \"Co\" 'x'")

_REGION = {
    "en": ("America/New_York", "USD"),
    "fr": ("Europe/Paris", "EUR"),
    "fr-CA": ("America/Toronto", "CAD"),
    "de": ("Europe/Berlin", "EUR"),
    "es": ("Europe/Madrid", "EUR"),
    "ja": ("Asia/Tokyo", "JPY"),
}


def _base(locale: str, first_name: str | None) -> dict[str, Any]:
    locale = normalize_locale(locale)
    time_zone, _currency = _REGION.get(locale, _REGION.get(locale.split("-")[0], ("UTC", "USD")))
    return {
        "recipient_id": 1042,
        "first_name": first_name,
        "locale": locale,
        "time_zone": time_zone,
        "program": program_context(),  # the program's identity and currency, as real sends have it
        "links": {
            "unsubscribe_url": "https://rewards.example.com/u/1042/unsubscribe?sig=abc123",
            "preferences_url": "https://rewards.example.com/u/1042/preferences?sig=abc123",
            "app_url": "https://rewards.example.com/app",
        },
    }


_JOURNEYS: dict[str, dict[str, Any]] = {
    "welcome": {
        "enrolled_at": datetime(2026, 11, 22, 18, 30, tzinfo=timezone.utc),
        "tier_code": "member",
        "has_device": 1,
    },
    "points_expiring": {
        "batch_id": 88,
        "points": 1250,
        "expires_at": datetime(2026, 11, 30, 23, 59, tzinfo=timezone.utc),
        "balance": 4820,
    },
    "tier_up": {
        "tier_change_id": 314,
        "tier_code": "gold",
        "tier_name": "Gold",
        "previous_tier_code": "silver",
        "changed_at": datetime(2026, 11, 21, 10, 15, tzinfo=timezone.utc),
        "benefits": ["Free shipping on every order", "Double points on your birthday month", "Early access to sales"],
        "survey": {"url": "https://rewards.example.com/survey/tok", "min": 0, "max": 10,  # journeys/surveys.py
                   "scores": [{"score": n, "url": f"https://rewards.example.com/survey/tok/{n}"} for n in range(11)]},
        "read_url": None,
    },
    "win_back": {
        "last_purchase_at": datetime(2026, 6, 2, 16, 45, tzinfo=timezone.utc),
        "frequency": 7,
        "monetary": Decimal("412.50"),
        "r_score": 1,
        "f_score": 3,
        "m_score": 4,
        "offer_percent": 20,
        "offer_code": "COMEBACK20",
    },
    "first_purchase": {  # an event-triggered journey: the purchase event's properties
        "event_id": 5301,
        "event_type": "purchase",
        "occurred_at": datetime(2026, 11, 23, 14, 52, tzinfo=timezone.utc),
        "amount": Decimal("54.90"),
        "currency": "EUR",
        "store_name": "Downtown Flagship",
        "points_earned": 55,
        "first_purchase": True,
    },
    "staff_bulletin": {
        "role": "manager",
        "store_id": 12,
        "store_name": "Downtown Flagship",
        "updates": [
            {"title": "Holiday double points", "body": "Members earn double points from Dec 1 to Dec 24.",
             "published_at": datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)},
            {"title": "New Gold benefits", "body": "Gold members now get free gift wrapping in store.",
             "published_at": datetime(2026, 11, 18, 14, 0, tzinfo=timezone.utc)},
        ],
        "figures": {"week_start": date(2026, 11, 16), "enrollments": 184, "redemptions": 1275, "tier_ups": 23},
        # per-store week, managers' section, read link and pulse (journeys/bulletin.py, journeys/surveys.py)
        "store_figures": {"enrollments": 12, "redemptions": 87, "tier_ups": 3, "nps": 40, "nps_responses": 10,
                          "promoters": 6, "passives": 2, "detractors": 2},
        "program_nps": {"nps": 31, "responses": 142},
        "manager": {"read_rate": 75, "read": 6, "sent": 8, "pulse_average": 4.2, "pulse_responses": 5,
                    "stores": [{"name": "Downtown Flagship", "enrollments": 12, "redemptions": 87, "tier_ups": 3,
                                "nps": 40, "nps_responses": 10, "promoters": 6, "passives": 2, "detractors": 2,
                                "read_rate": 75}]},
        "read_url": "https://rewards.example.com/read/tok",
        "survey": {"url": "https://rewards.example.com/survey/pulse", "min": 1, "max": 5,
                   "scores": [{"score": n, "url": f"https://rewards.example.com/survey/pulse/{n}"} for n in range(1, 6)]},
    },
}

JOURNEYS = tuple(_JOURNEYS)


_GENERATED: dict[str, Any] = {
    "int": 42,
    "float": 12.5,
    "decimal": Decimal("49.90"),
    "bool": True,
    "datetime": datetime(2026, 11, 30, 10, 0, tzinfo=timezone.utc),
    "date": date(2026, 11, 30),
    "json": {},
    "list": [],
    "dict": {},
}


def sample_value(name: str, kind: str) -> Any:
    """A typed sample for a declared field: a curated value of that name if any journey has one, else by kind."""
    for values in _JOURNEYS.values():
        if name in values:
            return values[name]
    if kind in _GENERATED:
        value = _GENERATED[kind]
        return type(value)(value) if isinstance(value, (dict, list)) else value
    return f"sample {name}"  # str, or an enricher key declared without a kind


def sample_context(journey: str, locale: str = "en", *, first_name: str | None = "Camille",
                   contract: ContextContract | None = None) -> dict[str, Any]:
    """A full render context for `journey` in `locale`: with a contract, exactly what it declares;
    without one, the hand-written sample of a shipped journey (unknown journeys: the base part only)."""
    context = _base(locale, first_name)
    if contract is None:
        context.update(_JOURNEYS.get(journey, {}))
        return context
    curated = {**_JOURNEYS.get(contract.journey, {}), **_JOURNEYS.get(journey, {})}
    for name, kind in {**contract.fields, **contract.enriched}.items():
        if name in BASE_CONTEXT:
            continue
        context[name] = curated[name] if name in curated else sample_value(name, kind)
    return context
