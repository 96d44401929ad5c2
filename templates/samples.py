"""Sample render contexts, one per journey, shaped like the audience rows of contracts.md.

Used by the template check, `loyalflow preview` and the gallery. Fixed values (no clock) so every
check run renders the same thing.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from templates.locales import normalize_locale

HOSTILE_NAMES = ("<script>alert(1)</script>", "Zoë 🎉✨", "مريم", "שָׁלוֹם & \"Co\" 'x'")

_REGION = {
    "en": ("America/New_York", "USD"),
    "fr": ("Europe/Paris", "EUR"),
    "fr-CA": ("America/Toronto", "CAD"),
    "de": ("Europe/Berlin", "EUR"),
    "es": ("Europe/Madrid", "EUR"),
}


def _base(locale: str, first_name: str | None) -> dict[str, Any]:
    locale = normalize_locale(locale)
    time_zone, currency = _REGION.get(locale, _REGION.get(locale.split("-")[0], ("UTC", "USD")))
    return {
        "recipient_id": 1042,
        "first_name": first_name,
        "locale": locale,
        "time_zone": time_zone,
        "program": {"name": "Loyalflow Rewards", "support_email": "help@rewards.example.com", "currency": currency},
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
    },
}

JOURNEYS = tuple(_JOURNEYS)


def sample_context(journey: str, locale: str = "en", *, first_name: str | None = "Camille") -> dict[str, Any]:
    """A full render context for `journey` in `locale` (unknown journeys get the common part only)."""
    context = _base(locale, first_name)
    context.update(_JOURNEYS.get(journey, {}))
    return context
