"""Purchases, the points ledger and tier history of one chunk of members, all vectorised.

Points follow the program's rules exactly: one point per currency unit (per 100 yen), each purchase's
points a batch that expires at the end of the same local day a year later, redemptions in multiples
of 100 never above the balance, consumption oldest first. The FIFO needs no per-member loop: with
batches in earn order, E_i the points earned through batch i and R(t) the points redeemed before t,
the points expired through batch i are M_i = max(0, max_{j<=i} (E_j - R(x_j))) (x_j: batch j's
expiry), so batch i expires M_i - M_{i-1} points; a running maximum per member gives all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audiences.demo.catalogue import CURRENCIES, STORE_CLOSE_HOUR, STORE_OPEN_HOUR, TIERS, ZONES
from audiences.demo.members import STORE_IDS_BY_ZONE, ZONE_STORE_COUNT, ZONE_STORE_START, MemberChunk, pick
from audiences.demo.timeline import DAY, Timeline

# purchase frequency per member per year: gamma-distributed (many light shoppers, a few heavy ones)
RATE_SHAPE = 1.4
RATE_MEAN_PER_YEAR = 7.8
NEVER_BUY_SHARE = 0.05
CHURN_SHARE = 0.15
"""Members who stop buying at some point; with the light shoppers they make the ~25% lapsed."""
HOME_STORE_SHARE = 0.88
BASKET_MEDIAN_MINOR = 3800
BASKET_SIGMA = 0.7
MEMBER_BASKET_SIGMA = 0.6
REDEEMER_SHARE = 0.35
MAX_REDEMPTIONS = 3
TRAILING_SECONDS = 365 * DAY
"""Tier spend window: the trailing 12 months, taken as 365 days."""

HOUR_WEIGHTS = np.array([0.5, 0.7, 1.0, 1.3, 1.1, 0.9, 0.8, 0.9, 1.2, 1.4, 1.1, 0.6])  # 09:00 .. 20:00
HOUR_WEIGHTS = HOUR_WEIGHTS / HOUR_WEIGHTS.sum()
assert len(HOUR_WEIGHTS) == STORE_CLOSE_HOUR - STORE_OPEN_HOUR

ZONE_CURRENCY = [z.locale.currency for z in ZONES]
ZONE_MINOR_PER_UNIT = np.array([CURRENCIES[c].minor_per_unit for c in ZONE_CURRENCY])
ZONE_MINOR_PER_POINT = np.array([CURRENCIES[c].minor_per_point for c in ZONE_CURRENCY])
TIER_THRESHOLDS_MINOR = np.array([t.threshold_spend * 100 for t in TIERS])
"""In program minor units (cents; yen count as 1/100 unit, see Currency.minor_per_point)."""
TIER_IDS = np.array([t.rank for t in TIERS])
"""Tier rows get id == rank."""

_SHIFT = 34  # member index above the relative time; relative times stay below 2**33 (> 270 years)


@dataclass
class Activity:
    purchases: dict[str, np.ndarray]
    ledger: dict[str, np.ndarray]
    tier_changes: dict[str, np.ndarray]
    tier_id: np.ndarray
    """Current tier id per member of the chunk."""


def ids_in_order_of(key: np.ndarray, first_id: int) -> np.ndarray:
    """Ids numbering rows in the order of `key` (stable). Purchases are numbered by time and ledger
    lines by expiry (lines without one first, in member and time order) so that inserting by id fills
    the table and its timestamp index front to back: a randomly ordered index of ~10 million rows
    outgrows SQLite's page cache and slows every insert. Within a member, ids still follow time
    order for lines at the same instant, which is all the FIFO rule needs (ties broken by id)."""
    ids = np.empty(len(key), dtype=np.int64)
    ids[np.argsort(key, kind="stable")] = np.arange(first_id, first_id + len(key), dtype=np.int64)
    return ids


def segment_starts(counts: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)


def segmented_cumsum(values: np.ndarray, owner: np.ndarray, starts: np.ndarray) -> np.ndarray:
    total = np.concatenate(([0], np.cumsum(values)))
    before = total[starts]  # sum of everything before each segment
    return total[1:] - np.repeat(before, np.bincount(owner, minlength=len(starts)))


def segmented_cummax(values: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Running maximum restarting at each owner (values >= 0, owners ascending)."""
    if len(values) == 0:
        return values
    big = int(values.max()) + 1
    lifted = owner.astype(np.int64) * big + values
    return np.maximum.accumulate(lifted) - owner.astype(np.int64) * big


def generate_activity(rng: np.random.Generator, tl: Timeline, members: MemberChunk,
                      first_purchase_id: int, first_ledger_id: int, first_change_id: int) -> Activity:
    n = len(members.ids)
    zone = members.zone
    base = tl.as_of_s - 5 * 365 * DAY  # relative times: small non-negative ints

    # --- how often each member buys, over which local days
    rate = rng.gamma(RATE_SHAPE, RATE_MEAN_PER_YEAR / RATE_SHAPE, n) / 365.0
    rate[rng.random(n) < NEVER_BUY_SHARE] = 0.0
    start = np.maximum(tl.purchase_start, members.enrolled_day + 1)
    churned = rng.random(n) < CHURN_SHARE
    churn_day = members.enrolled_day + 1 + (rng.random(n) * (tl.last_day - members.enrolled_day)).astype(np.int64)
    end = np.where(churned, np.minimum(churn_day, tl.last_day), tl.last_day)
    end = np.maximum(end, start)
    cum = np.concatenate(([0.0], np.cumsum(tl.season)))
    weight = cum[end] - cum[start]
    count = rng.poisson(rate * weight)
    count = np.where((rate > 0) & (end > start), np.maximum(count, 1), count)  # most join at a checkout
    owner = np.repeat(np.arange(n), count)
    k = len(owner)

    # stratified over the member's window: regular shoppers come back regularly (not Poisson gaps)
    rank = np.arange(k) - np.repeat(segment_starts(count), count)
    target = cum[start[owner]] + (rank + rng.random(k)) / np.maximum(count[owner], 1) * weight[owner]
    day = np.clip(np.searchsorted(cum, target, side="right") - 1, start[owner], end[owner] - 1)
    hour = STORE_OPEN_HOUR + rng.choice(len(HOUR_WEIGHTS), k, p=HOUR_WEIGHTS)
    pzone = zone[owner]
    # even seconds; redemptions happen at odd ones, so an earn and a redemption never coincide
    t = tl.local_instant(pzone, day, hour * 3600 + 2 * rng.integers(0, 1800, k))
    order = np.argsort((owner.astype(np.int64) << _SHIFT) | (t - base), kind="stable")
    day, t, pzone = day[order], t[order], pzone[order]  # owner is already grouped and stays so

    store = np.where(rng.random(k) < HOME_STORE_SHARE, members.home_store[owner],
                     STORE_IDS_BY_ZONE[pick(rng, ZONE_STORE_START, ZONE_STORE_COUNT, pzone)])
    basket = rng.lognormal(0.0, MEMBER_BASKET_SIGMA, n)[owner]
    month_boost = np.where(tl.season[day] > 1.5, 1.2, 1.0)  # bigger baskets in the festive peak
    minor = np.maximum(200, rng.lognormal(np.log(BASKET_MEDIAN_MINOR), BASKET_SIGMA, k) * basket * month_boost)
    minor_per_unit = ZONE_MINOR_PER_UNIT[pzone]
    step = np.where(minor_per_unit == 1, 10, 1)  # yen prices end in 0
    minor = (np.round(minor / step) * step).astype(np.int64)
    points = minor // ZONE_MINOR_PER_POINT[pzone]
    purchase_ids = ids_in_order_of(t, first_purchase_id)

    purchases = {
        "id": purchase_ids,
        "member_id": members.ids[owner],
        "store_id": store,
        "amount_minor": minor,
        "minor_per_unit": minor_per_unit,
        "currency": np.array(ZONE_CURRENCY, dtype=object)[pzone],
        "purchased_at": t,
    }

    tier_changes, tier_id = _tiers(tl, members, owner, t, minor, base, first_change_id)
    ledger = _ledger(rng, tl, members, owner, count, t, day, pzone, points, purchase_ids, base, first_ledger_id)
    return Activity(purchases, ledger, tier_changes, tier_id)


def _tiers(tl: Timeline, members: MemberChunk, owner: np.ndarray, t: np.ndarray, minor: np.ndarray,
           base: int, first_change_id: int) -> tuple[dict[str, object], np.ndarray]:
    """Tier = the highest threshold met by the trailing-12-month spend, re-evaluated whenever a purchase
    enters or leaves the window; every change is recorded (members start in bronze, unrecorded)."""
    n = len(members.ids)
    leaves = t + TRAILING_SECONDS
    gone = leaves <= tl.as_of_s
    ev_owner = np.concatenate((owner, owner[gone]))
    ev_t = np.concatenate((t, leaves[gone]))
    ev_delta = np.concatenate((minor, -minor[gone]))
    ev_add = np.concatenate((np.ones(len(t), dtype=np.int64), np.zeros(int(gone.sum()), dtype=np.int64)))
    order = np.argsort((ev_owner.astype(np.int64) << _SHIFT) | ((ev_t - base) << 1) | ev_add, kind="stable")
    ev_owner, ev_t, ev_delta = ev_owner[order], ev_t[order], ev_delta[order]
    counts = np.bincount(ev_owner, minlength=n)
    spend = segmented_cumsum(ev_delta, ev_owner, segment_starts(counts))
    rank_index = np.searchsorted(TIER_THRESHOLDS_MINOR, spend, side="right") - 1
    # evaluate once per instant (a purchase leaving and one entering at the same second is one change)
    settled = np.ones(len(ev_t), dtype=bool)
    if len(ev_t) > 1:
        settled[:-1] = (ev_owner[1:] != ev_owner[:-1]) | (ev_t[1:] != ev_t[:-1])
    ev_owner, ev_t, rank_index = ev_owner[settled], ev_t[settled], rank_index[settled]
    previous = np.zeros(len(rank_index), dtype=np.int64)
    if len(rank_index) > 1:
        previous[1:] = np.where(ev_owner[1:] == ev_owner[:-1], rank_index[:-1], 0)
    changed = rank_index != previous
    current = np.zeros(n, dtype=np.int64)
    if len(ev_owner):
        last = np.ones(len(ev_owner), dtype=bool)
        last[:-1] = ev_owner[1:] != ev_owner[:-1]
        current[ev_owner[last]] = rank_index[last]
    c = int(changed.sum())
    changes = {
        "id": np.arange(first_change_id, first_change_id + c, dtype=np.int64),
        "member_id": members.ids[ev_owner[changed]],
        "from_tier_id": TIER_IDS[previous[changed]],
        "to_tier_id": TIER_IDS[rank_index[changed]],
        "changed_at": ev_t[changed],
    }
    return changes, TIER_IDS[current]


def _ledger(rng: np.random.Generator, tl: Timeline, members: MemberChunk, owner: np.ndarray, count: np.ndarray,
            t: np.ndarray, day: np.ndarray, pzone: np.ndarray, points: np.ndarray, purchase_ids: np.ndarray,
            base: int, first_ledger_id: int) -> dict[str, object]:
    n = len(members.ids)
    k = len(owner)
    starts = segment_starts(count)
    expiry = tl.expiry(pzone, day)
    earned = segmented_cumsum(points, owner, starts)  # E_i
    owner64 = owner.astype(np.int64) << _SHIFT
    earn_key = owner64 | (t - base)
    expiry_key = owner64 | (expiry - base)  # sorted too: expiry grows with the earn day

    # redemption attempts: some members, 1-3 times, at odd seconds (never at an expiry midnight)
    redeemer = (count >= 2) & (rng.random(n) < REDEEMER_SHARE)
    attempts = np.where(redeemer, 1 + rng.binomial(MAX_REDEMPTIONS - 1, 0.35, n), 0)
    first_t = np.where(count > 0, t[np.minimum(starts, max(k - 1, 0))] if k else 0, tl.as_of_s)
    lo = first_t + 7 * DAY
    hi = tl.as_of_s - 3600
    span = np.maximum(hi - lo, 0)
    red_t = np.sort(lo[:, None] + (rng.random((n, MAX_REDEMPTIONS)) * span[:, None]).astype(np.int64), axis=1) | 1
    red_ok = (np.arange(MAX_REDEMPTIONS)[None, :] < attempts[:, None]) & (span[:, None] > 0)
    red_a = np.zeros((n, MAX_REDEMPTIONS), dtype=np.int64)
    share = rng.uniform(0.5, 1.0, (n, MAX_REDEMPTIONS))

    def expired_through() -> np.ndarray:
        """M_i under the redemptions fixed so far."""
        redeemed_before_expiry = (red_a[owner] * (red_t[owner] < expiry[:, None])).sum(axis=1)
        return segmented_cummax(np.maximum(earned - redeemed_before_expiry, 0), owner)

    for j in range(MAX_REDEMPTIONS):
        who = np.flatnonzero(red_ok[:, j])
        if len(who) == 0 or k == 0:
            continue
        expired = expired_through()
        when = red_t[who, j]
        key = (who.astype(np.int64) << _SHIFT) | (when - base)
        n_earned = np.searchsorted(earn_key, key, side="right") - starts[who]
        n_expired = np.searchsorted(expiry_key, key, side="right") - starts[who]
        e_t = np.where(n_earned > 0, earned[np.maximum(starts[who] + n_earned - 1, 0)], 0)
        x_t = np.where(n_expired > 0, expired[np.maximum(starts[who] + n_expired - 1, 0)], 0)
        balance = e_t - x_t - red_a[who, :j].sum(axis=1)
        red_a[who, j] = (balance * share[who, j]).astype(np.int64) // 100 * 100

    expired = expired_through() if k else np.zeros(0, dtype=np.int64)
    previous = np.zeros(k, dtype=np.int64)
    if k > 1:
        previous[1:] = np.where(owner[1:] == owner[:-1], expired[:-1], 0)
    expire_pts = expired - previous
    expire_rows = np.flatnonzero((expire_pts > 0) & (expiry < tl.as_of_s))

    red_m, red_j = np.nonzero(red_a > 0)
    # one table of events, then sorted per member by time; at one instant: earn, redeem, expire
    ev_owner = np.concatenate((owner, red_m, owner[expire_rows]))
    ev_t = np.concatenate((t, red_t[red_m, red_j], expiry[expire_rows]))
    ev_kind = np.concatenate((np.zeros(k, np.int64), np.ones(len(red_m), np.int64), np.full(len(expire_rows), 2)))
    ev_points = np.concatenate((points, -red_a[red_m, red_j], -expire_pts[expire_rows]))
    ev_batch = np.concatenate((np.arange(k), np.full(len(red_m), -1), expire_rows))
    order = np.argsort((ev_owner.astype(np.int64) << _SHIFT) | ((ev_t - base) << 2) | ev_kind, kind="stable")
    ev_owner, ev_t, ev_kind, ev_points, ev_batch = (a[order] for a in (ev_owner, ev_t, ev_kind, ev_points, ev_batch))
    expires_at = np.where(ev_kind == 0, expiry[np.maximum(ev_batch, 0)], -1)
    ids = ids_in_order_of(expires_at, first_ledger_id)
    earn_ledger_id = np.zeros(k, dtype=np.int64)
    is_earn = ev_kind == 0
    earn_ledger_id[ev_batch[is_earn]] = ids[is_earn]
    return {
        "id": ids,
        "member_id": members.ids[ev_owner],
        "kind": ev_kind,  # 0 earn, 1 redeem, 2 expire
        "points": ev_points,
        "occurred_at": ev_t,
        "expires_at": expires_at,
        "purchase_id": np.where(is_earn, purchase_ids[np.maximum(ev_batch, 0)], -1),
        "batch_ledger_id": np.where(ev_kind == 2, earn_ledger_id[np.maximum(ev_batch, 0)], -1),
    }
