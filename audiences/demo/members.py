"""Members of one chunk: who they are, how to reach them (including the deliberately bad contacts),
when they enrolled, and their push devices. Vectorised with numpy; strings built once per row."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audiences.demo.catalogue import EMAIL_DOMAINS, PHONE_PLANS, STORES, ZONES
from audiences.demo.timeline import DAY, Timeline

# shares of deliberately bad contacts (together ~4% of members)
BAD_EMAIL = 0.012
LANDLINE = 0.010
"""A fixed-line number where a mobile is expected; in North America, where the two cannot be told
apart, these members get no phone instead."""
NO_PHONE = 0.010
NO_EMAIL = 0.008
NO_FIRST_NAME = 0.01
DEVICE_SHARE = 0.55
REVOKED_SHARE = 0.04
STATUS_SHARES = {"active": 0.985, "suspended": 0.005, "closed": 0.01}

ZONE_SHARES = np.array([z.share for z in ZONES])
ZONE_NAMES = [z.name for z in ZONES]
ZONE_TAGS = [z.locale.tag for z in ZONES]
ZONE_COUNTRIES = [z.locale.country for z in ZONES]
ZONE_IOS = np.array([z.locale.ios_share for z in ZONES])

# every zone's first/last names laid end to end, with each zone's slice
_FIRST = [[(n, z.locale.email_name(n)) for n in z.locale.first_names] for z in ZONES]
_LAST = [[(n, z.locale.email_name(n)) for n in z.locale.last_names] for z in ZONES]


def _flatten(lists: list[list[tuple[str, str]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    start = np.cumsum([0] + [len(x) for x in lists[:-1]])
    count = np.array([len(x) for x in lists])
    shown = np.array([n for x in lists for n, _ in x], dtype=object)
    ascii_ = np.array([a for x in lists for _, a in x], dtype=object)
    return start, count, shown, ascii_


FIRST_START, FIRST_COUNT, FIRST_SHOWN, FIRST_ASCII = _flatten(_FIRST)
LAST_START, LAST_COUNT, LAST_SHOWN, LAST_ASCII = _flatten(_LAST)

ZONE_STORES = [[i + 1 for i, s in enumerate(STORES) if s.zone == z.name] for z in ZONES]
ZONE_STORE_START = np.cumsum([0] + [len(s) for s in ZONE_STORES[:-1]])
ZONE_STORE_COUNT = np.array([len(s) for s in ZONE_STORES])
STORE_IDS_BY_ZONE = np.array([sid for s in ZONE_STORES for sid in s])


def pick(rng: np.random.Generator, start: np.ndarray, count: np.ndarray, zone: np.ndarray) -> np.ndarray:
    """One index per row into a flattened per-zone list."""
    return start[zone] + (rng.random(len(zone)) * count[zone]).astype(np.int64)


@dataclass
class MemberChunk:
    ids: np.ndarray
    zone: np.ndarray
    enrolled_day: np.ndarray
    enrolled_s: np.ndarray
    home_store: np.ndarray
    rows: dict[str, list[object]]
    """Column name -> values for the members table, except tier_id (known after purchases)."""
    devices: dict[str, list[object]]
    """device_tokens columns except id."""


def _phones(rng: np.random.Generator, zone: np.ndarray, landline: np.ndarray) -> list[str | None]:
    out: list[str | None] = [None] * len(zone)
    country = np.array(ZONE_COUNTRIES)[zone]
    for code, plan in PHONE_PLANS.items():
        for fixed in (False, True):
            rows = np.flatnonzero((country == code) & (landline == fixed))
            if len(rows) == 0:
                continue
            prefixes = plan.landline_prefixes if fixed else plan.mobile_prefixes
            length = plan.landline_length if fixed else plan.mobile_length
            chosen = rng.integers(0, len(prefixes), len(rows))
            # the suffix length depends on the prefix length; draw enough digits for the longest
            digits = rng.integers(0, 10 ** 9, len(rows))
            for r, p, d in zip(rows.tolist(), chosen.tolist(), digits.tolist()):
                prefix = prefixes[p]
                width = length - len(prefix)
                out[r] = f"+{plan.country_code}{prefix}{d % 10 ** width:0{width}d}"
    return out


def generate_members(rng: np.random.Generator, timeline: Timeline, first_id: int, n: int) -> MemberChunk:
    ids = np.arange(first_id, first_id + n, dtype=np.int64)
    zone = rng.choice(len(ZONES), n, p=ZONE_SHARES)

    # enrolment: the program grows, so later days are likelier; local time 07:00-23:00
    span = timeline.last_day - timeline.enroll_start
    growth = rng.random(n)
    enrolled_day = timeline.enroll_start + (np.sqrt(0.25 + 2.0 * growth * 1.0) - 0.5).clip(0, 1 - 1e-9) * span
    enrolled_day = enrolled_day.astype(np.int64)
    enrolled_s = timeline.local_instant(zone, enrolled_day, rng.integers(7 * 3600, 23 * 3600, n))

    fi = pick(rng, FIRST_START, FIRST_COUNT, zone)
    li = pick(rng, LAST_START, LAST_COUNT, zone)
    first = FIRST_SHOWN[fi]
    first[rng.random(n) < NO_FIRST_NAME] = None

    # contacts: one category draw per member, so the shares do not overlap
    u = rng.random(n)
    bad_email = u < BAD_EMAIL
    landline = (u >= BAD_EMAIL) & (u < BAD_EMAIL + LANDLINE)
    no_phone = (u >= BAD_EMAIL + LANDLINE) & (u < BAD_EMAIL + LANDLINE + NO_PHONE)
    no_email = (u >= BAD_EMAIL + LANDLINE + NO_PHONE) & (u < BAD_EMAIL + LANDLINE + NO_PHONE + NO_EMAIL)
    has_landlines = np.array([PHONE_PLANS[c].has_landlines for c in ZONE_COUNTRIES])[zone]
    no_phone |= landline & ~has_landlines
    landline &= has_landlines

    phones = _phones(rng, zone, landline)
    for r in np.flatnonzero(no_phone).tolist():
        phones[r] = None

    domain = rng.integers(0, len(EMAIL_DOMAINS), n).tolist()
    style = rng.integers(0, 4, n).tolist()
    emails: list[str | None] = []
    for mid, f, l, d, s, bad, none in zip(ids.tolist(), FIRST_ASCII[fi].tolist(), LAST_ASCII[li].tolist(), domain,
                                           style, bad_email.tolist(), no_email.tolist()):
        if none:
            emails.append(None)
        elif bad:
            emails.append((f"{f}.{l}@@{EMAIL_DOMAINS[d]}", f"{f}.{l}.{EMAIL_DOMAINS[d]}", f"{f}.{l}{mid}@example",
                           f"{f} {l}@{EMAIL_DOMAINS[d]}")[s])
        else:
            emails.append((f"{f}.{l}{mid}", f"{f}{l}{mid}", f"{f[:1]}{l}{mid}", f"{l}.{f}{mid}")[s] + "@" + EMAIL_DOMAINS[d])

    status_names = list(STATUS_SHARES)
    status = np.array(status_names, dtype=object)[rng.choice(len(status_names), n, p=list(STATUS_SHARES.values()))]
    home_store = STORE_IDS_BY_ZONE[pick(rng, ZONE_STORE_START, ZONE_STORE_COUNT, zone)]

    rows: dict[str, list[object]] = {
        "id": ids.tolist(),
        "first_name": first.tolist(),
        "last_name": LAST_SHOWN[li].tolist(),
        "email": emails,
        "phone": phones,
        "locale": np.array(ZONE_TAGS, dtype=object)[zone].tolist(),
        "time_zone": np.array(ZONE_NAMES, dtype=object)[zone].tolist(),
        "country": np.array(ZONE_COUNTRIES, dtype=object)[zone].tolist(),
        "enrolled_at": enrolled_s,  # formatted by the writer
        "status": status.tolist(),
    }
    return MemberChunk(ids, zone, enrolled_day, enrolled_s, home_store, rows,
                       _devices(rng, timeline, ids, zone, enrolled_s))


def _devices(rng: np.random.Generator, timeline: Timeline, ids: np.ndarray, zone: np.ndarray,
             enrolled_s: np.ndarray) -> dict[str, list[object]]:
    has = np.flatnonzero(rng.random(len(ids)) < DEVICE_SHARE)
    k = len(has)
    ios = rng.random(k) < ZONE_IOS[zone[has]]
    room = np.maximum(timeline.as_of_s - enrolled_s[has] - 60, 1)
    created = enrolled_s[has] + (rng.random(k) * np.minimum(room, 30 * DAY)).astype(np.int64)
    revoked = rng.random(k) < REVOKED_SHARE
    revoked_at = created + (rng.random(k) * np.maximum(timeline.as_of_s - created - 1, 1)).astype(np.int64)
    raw = rng.bytes(32 * k).hex()
    return {
        "member_id": ids[has].tolist(),
        "platform": np.where(ios, "ios", "android").astype(object).tolist(),
        "token": [raw[64 * i: 64 * i + 64] for i in range(k)],
        "created_at": created,
        "revoked_at": np.where(revoked, revoked_at, -1),  # -1: not revoked (NULL)
    }
