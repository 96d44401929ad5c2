"""new_members, tier_ups, lapsed (RFM) and staff on hand-built data at frozen times."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from freezegun import freeze_time
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from audiences.errors import InvalidParameter, UnknownAudience
from audiences.models import MemberStatus, StaffRole
from audiences.queries import get_audience
from tests.audiences import builders as b

NOW = "2026-11-23T09:30:00+00:00"


def ids(session: Session, name: str, now: datetime, **params: object) -> list[int]:
    return [r.recipient_id for r in session.execute(get_audience(name).query(now, **params).select())]


@freeze_time(NOW)
def test_new_members_window_and_device_flag(engine: Engine) -> None:
    now = datetime.now(timezone.utc)
    with Session(engine, expire_on_commit=False) as s:
        edge = b.member(s, 1, enrolled_at=now - b.days(7))                          # exactly 7 days: out
        inside = b.member(s, 2, enrolled_at=now - b.days(7) + timedelta(seconds=1))  # in
        future = b.member(s, 3, enrolled_at=now + timedelta(minutes=1))              # not yet: out
        b.member(s, 4, enrolled_at=now - b.days(1), status=MemberStatus.suspended)   # inactive: out
        fresh = b.member(s, 5, enrolled_at=now - b.days(1))
        b.device(s, inside, now - b.days(1))
        b.device(s, fresh, now - b.days(1), revoked_at=now - timedelta(hours=1))     # revoked: no device
        s.commit()
        rows = {r.recipient_id: r for r in s.execute(get_audience("new_members").query(now).select())}
        assert sorted(rows) == [2, 5]
        assert rows[2].has_device == 1 and rows[5].has_device == 0
        assert sorted(ids(s, "new_members", now, within_days=8)) == [1, 2, 5]
        assert edge.id == 1 and future.id == 3


@freeze_time(NOW)
def test_tier_ups_only_upgrades_still_held(engine: Engine) -> None:
    now = datetime.now(timezone.utc)
    with Session(engine, expire_on_commit=False) as s:
        t = b.tiers(s)
        up = b.member(s, 1, enrolled_at=now - b.days(300), tier=t["bronze"])
        b.tier_change(s, up, t["bronze"], t["gold"], now - b.days(2))
        down = b.member(s, 2, enrolled_at=now - b.days(300), tier=t["gold"])
        b.tier_change(s, down, t["gold"], t["silver"], now - b.days(2))
        first = b.member(s, 3, enrolled_at=now - b.days(1))
        b.tier_change(s, first, None, t["bronze"], now - b.days(1))           # initial tier: not a tier-up
        bounced = b.member(s, 4, enrolled_at=now - b.days(300), tier=t["silver"])
        b.tier_change(s, bounced, t["silver"], t["gold"], now - b.days(5))
        b.tier_change(s, bounced, t["gold"], t["silver"], now - b.days(1))   # lost it again: out
        old = b.member(s, 5, enrolled_at=now - b.days(300), tier=t["silver"])
        b.tier_change(s, old, t["silver"], t["platinum"], now - b.days(30))  # outside the window
        s.commit()
        rows = s.execute(get_audience("tier_ups").query(now).select()).all()
        assert [(r.recipient_id, r.tier_code, r.previous_tier_code) for r in rows] == [(1, "gold", "bronze")]
        assert ids(s, "tier_ups", now, since=now - b.days(31)) == [1, 5]


def reference_ntile(values: dict[int, tuple], buckets: int = 5) -> dict[int, int]:
    """NTILE as SQL defines it: sorted rows split into `buckets` groups, larger groups first."""
    ordered = sorted(values, key=lambda k: (values[k], k))
    n = len(ordered)
    small, extra = divmod(n, buckets)
    out, i = {}, 0
    for bucket in range(1, buckets + 1):
        size = small + (1 if bucket <= extra else 0)
        for member_id in ordered[i:i + size]:
            out[member_id] = bucket
        i += size
    return out


@freeze_time(NOW)
def test_lapsed_rfm_scores_match_the_definition(engine: Engine) -> None:
    now = datetime.now(timezone.utc)
    # member id -> (days ago of each purchase, amount of each)
    history = {
        1: ([10, 40], "20.10"), 2: ([95, 200, 300], "30.20"), 3: ([91], "500.00"), 4: ([400, 500], "10.10"),
        5: ([120, 130, 140, 150], "30.30"), 6: ([89.9], "5.00"), 7: ([800], "99.00"), 8: ([90], "1.00"),
        9: ([700, 710, 720], "30.30"), 10: ([200], "60.60"), 11: ([365], "12.34"),
    }
    with Session(engine, expire_on_commit=False) as s:
        for member_id, (ago, amount) in history.items():
            m = b.member(s, member_id, enrolled_at=now - b.days(900))
            for d in ago:
                b.buy(s, m, amount, now - b.days(d))
        b.member(s, 12, enrolled_at=now - b.days(900))  # never bought
        closed = b.member(s, 13, enrolled_at=now - b.days(900), status=MemberStatus.closed)
        b.buy(s, closed, "50.00", now - b.days(200))
        s.commit()
        rows = {r.recipient_id: r for r in s.execute(get_audience("lapsed").query(now).select())}

        # the RFM population: active members with a purchase in the last 730 days (not 7, 12, 13)
        population = {k: v for k, v in history.items() if min(v[0]) < 730}
        last = {k: (-min(v[0]),) for k, v in population.items()}
        freq = {k: (sum(1 for d in v[0] if d < 730),) for k, v in population.items()}
        from decimal import Decimal
        money = {k: (sum(Decimal(v[1]) for d in v[0] if d < 730),) for k, v in population.items()}
        r, f, m_ = reference_ntile(last), reference_ntile(freq), reference_ntile(money)

        lapsed = sorted(k for k, v in population.items() if min(v[0]) >= 90)
        assert sorted(rows) == lapsed  # 8 (exactly 90 days) is in, 6 (89.9 days) is out
        for k in lapsed:
            assert (rows[k].r_score, rows[k].f_score, rows[k].m_score) == (r[k], f[k], m_[k]), k
            assert rows[k].frequency == freq[k][0]
        valuable = ids(s, "lapsed", now, min_value_score=4)
        assert valuable == sorted(k for k in lapsed if f[k] >= 4 or m_[k] >= 4)
        why = get_audience("lapsed").explain(s, now, 12)
        assert [c.name for c in why.rows[0].criteria if not c.passed] == ["has_purchases"]
        why = get_audience("lapsed").explain(s, now, 6, min_value_score=5)
        assert [c.name for c in why.rows[0].criteria if not c.passed][0] == "lapsed"


@freeze_time(NOW)
def test_staff_by_role_and_store(engine: Engine) -> None:
    now = datetime.now(timezone.utc)
    with Session(engine, expire_on_commit=False) as s:
        north, south = b.store(s, 1, "North"), b.store(s, 2, "South")
        b.staff(s, 1, StaffRole.store_manager, north)
        b.staff(s, 2, StaffRole.associate, north)
        b.staff(s, 3, StaffRole.store_manager, south)
        b.staff(s, 4, StaffRole.program_manager, None)
        b.staff(s, 5, StaffRole.store_manager, north, active=False)
        s.commit()
        assert ids(s, "staff", now) == [1, 2, 3, 4]
        assert ids(s, "staff", now, roles=["store_manager"]) == [1, 3]
        assert ids(s, "staff", now, roles=["store_manager", "associate"], store_ids=[1]) == [1, 2]
        row = s.execute(get_audience("staff").query(now, store_ids=[2]).select()).one()
        assert (row.recipient_id, row.store_name, row.role) == (3, "South", StaffRole.store_manager)


def test_bad_names_and_parameters_are_refused_with_the_known_ones() -> None:
    with pytest.raises(UnknownAudience, match="known audiences: lapsed, members, new_members, points_expiring, staff, tier_ups"):
        get_audience("winback")
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(InvalidParameter, match="known: lapsed_days, lookback_days, min_value_score"):
        get_audience("lapsed").query(now, window=3)
    with pytest.raises(InvalidParameter, match="within_days must be >= 0"):
        get_audience("new_members").query(now, within_days=-1)
    with pytest.raises(InvalidParameter, match="timezone-aware"):
        get_audience("new_members").query(now.replace(tzinfo=None))
    with pytest.raises(InvalidParameter, match="since="):
        get_audience("tier_ups").parse_params({"since": "2026-01-01"})
