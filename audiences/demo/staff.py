"""The small, fixed-size tables: tiers, stores, staff across stores and head office, program updates."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from audiences.demo.benefits import localized
from audiences.demo.catalogue import EMAIL_DOMAINS, LOCALES, STORES, TIERS, ZONE_BY_NAME

STAFF_PER_STORE = (6, 10)
"""Inclusive range of staff in a store (one store manager, the rest associates)."""
HEAD_OFFICE_ZONE = "America/New_York"
PROGRAM_MANAGERS = 4
UPDATES = 25
UPDATE_MONTHS = 6

_UPDATE_TOPICS = (
    ("Double points weekend", "Members earn double points on every purchase this Saturday and Sunday. Remind them at checkout."),
    ("New reward: free gift wrapping", "Gold and Platinum members can now redeem 200 points for gift wrapping."),
    ("Points expiry reminders", "Members now get a reminder 30 and 7 days before points expire. Expect questions at the till."),
    ("Holiday opening hours", "Stores open one hour earlier from 1 December until Christmas Eve."),
    ("Tier review results", "This quarter's tier review moved more members to Silver than ever. Congratulate them."),
    ("App update: digital card", "The loyalty card now lives in the app wallet; scan it like a physical card."),
    ("Enrollment contest", "The store with the most new members this month wins a team dinner."),
    ("Summer campaign", "Summer bonus: 150 points for members who spend over 100 this month."),
    ("Data protection refresher", "Never write a member's phone or email on paper; use the app's lookup instead."),
    ("Win-back offers", "Lapsed members receive a 15% offer; they can use it in store or online."),
)


def tier_rows() -> list[dict[str, Any]]:
    return [{"id": t.rank, "code": t.code, "name": t.name, "rank": t.rank, "threshold_spend": t.threshold_spend,
             "benefits": [localized(b) for b in t.benefits]} for t in TIERS]


def store_rows() -> list[dict[str, Any]]:
    return [{"id": i + 1, "code": s.code, "name": s.name, "country": ZONE_BY_NAME[s.zone].locale.country,
             "time_zone": s.zone} for i, s in enumerate(STORES)]


def staff_rows(rng: np.random.Generator) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def person(zone_name: str, role: str, store_id: int | None) -> None:
        locale = ZONE_BY_NAME[zone_name].locale
        first = locale.first_names[int(rng.integers(len(locale.first_names)))]
        last = locale.last_names[int(rng.integers(len(locale.last_names)))]
        sid = len(rows) + 1
        email = f"{locale.email_name(first)}.{locale.email_name(last)}.staff{sid}@{EMAIL_DOMAINS[sid % 3]}"
        rows.append({"id": sid, "first_name": first, "last_name": last, "role": role, "store_id": store_id,
                     "email": email, "phone": None, "locale": locale.tag, "time_zone": zone_name,
                     "active": bool(rng.random() > 0.03)})

    for store_id, store in enumerate(STORES, start=1):
        person(store.zone, "store_manager", store_id)
        for _ in range(int(rng.integers(STAFF_PER_STORE[0], STAFF_PER_STORE[1] + 1)) - 1):
            person(store.zone, "associate", store_id)
    for locale in LOCALES:  # head office: a regional manager per country, program managers
        person(locale.zones[0][0], "regional_manager", None)
    for _ in range(PROGRAM_MANAGERS):
        person(HEAD_OFFICE_ZONE, "program_manager", None)
    return rows


def program_update_rows(rng: np.random.Generator, as_of: datetime) -> list[dict[str, Any]]:
    """~25 updates over the last six months; about a third for some roles only, a few for one store."""
    span = timedelta(days=30 * UPDATE_MONTHS)
    offsets = np.sort(rng.random(UPDATES))
    rows: list[dict[str, Any]] = []
    for i, fraction in enumerate(offsets.tolist(), start=1):
        title, body = _UPDATE_TOPICS[int(rng.integers(len(_UPDATE_TOPICS)))]
        published = (as_of - span + span * fraction).replace(microsecond=0)
        audience = rng.random()
        roles = None
        store_id = None
        if audience < 0.2:
            roles = "store_manager,regional_manager"
        elif audience < 0.35:
            roles = "associate"
        elif audience < 0.5:
            store_id = int(rng.integers(1, len(STORES) + 1))
        rows.append({"id": i, "title": title, "body": body, "roles": roles, "store_id": store_id,
                     "published_at": published.astimezone(timezone.utc)})
    return rows

