"""points_expiring with `digest_days`: batches expiring in the same window are one row (one reminder),
with their total left and their earliest date; SQLite and PostgreSQL agree (the `engine` fixture)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from freezegun import freeze_time
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from audiences.queries import get_audience
from tests.audiences import builders as b

NOW = "2026-11-23T00:00:00+00:00"  # day 20780 since 1970; 7-day window 2969 is Nov 26 .. Dec 2
AUD = get_audience("points_expiring")


def digest(session: Session, now: datetime, **params: int) -> list[dict]:
    params = {"digest_days": 7, **params}
    return [dict(r) for r in session.execute(AUD.query(now, **params).select()).mappings()]


def at(day: int) -> datetime:
    """Midnight UTC of 2026-11-{day} (days past 30 roll into December)."""
    return datetime(2026, 11, 1, tzinfo=timezone.utc) + timedelta(days=day - 1)


@freeze_time(NOW)
def test_batches_in_one_window_are_one_row_with_total_and_earliest_date(engine: Engine) -> None:
    now = datetime.now(timezone.utc)
    with Session(engine, expire_on_commit=False) as s:
        m = b.member(s, 1, enrolled_at=now - b.days(400))
        # window 2969 (Nov 26 .. Dec 2): three batches; Dec 3 starts the next window
        first = b.earn(s, m, 40, now - b.days(360), at(27))
        b.earn(s, m, 30, now - b.days(358), at(29))
        last = b.earn(s, m, 20, now - b.days(357), at(32))
        other = b.earn(s, m, 55, now - b.days(356), at(33))
        b.spend(s, m, 10, now - b.days(100))  # 10 of `first` (oldest first)
        s.commit()
        found = digest(s, now)
    assert [(r["points"], r["expires_at"], r["batches"]) for r in found] == [
        (30 + 30 + 20, at(27), 3), (55, at(33), 1)]
    assert [r["batch_id"] for r in found] == [last.id, other.id]  # the batch consumed last: spent = all spent
    assert found[0]["window_key"] == "7d:2969" and found[1]["window_key"] == "7d:2970"
    assert first.id not in {r["batch_id"] for r in found}


@freeze_time(NOW)
def test_the_total_counts_batches_past_the_horizon_so_the_key_and_total_do_not_drift(engine: Engine) -> None:
    """Dec 2 is past a 8-day horizon but in the window of Nov 27: still part of that reminder."""
    now = datetime.now(timezone.utc)
    with Session(engine, expire_on_commit=False) as s:
        m = b.member(s, 2, enrolled_at=now - b.days(400))
        b.earn(s, m, 40, now - b.days(360), at(27))
        b.earn(s, m, 25, now - b.days(350), at(32))
        s.commit()
        found = digest(s, now, within_days=5)
        tomorrow = digest(s, now + timedelta(days=1), within_days=5)
    assert [(r["points"], r["window_key"]) for r in found] == [(65, "7d:2969")]
    assert [(r["points"], r["window_key"]) for r in tomorrow] == [(65, "7d:2969")]


@freeze_time(NOW)
def test_spent_and_expired_batches_leave_the_digest(engine: Engine) -> None:
    now = datetime.now(timezone.utc)
    with Session(engine, expire_on_commit=False) as s:
        spent = b.member(s, 3, enrolled_at=now - b.days(400))
        b.earn(s, spent, 40, now - b.days(360), at(27))
        b.earn(s, spent, 30, now - b.days(359), at(28))
        b.spend(s, spent, 70, now - b.days(30))
        expired = b.member(s, 4, enrolled_at=now - b.days(400))
        b.earn(s, expired, 40, now - b.days(400), at(22))  # expired yesterday: not merged into anything
        b.earn(s, expired, 15, now - b.days(360), at(24))
        s.commit()
        found = digest(s, now)
        assert AUD.count(s, now, digest_days=7) == 1
    assert [(r["recipient_id"], r["points"], r["expires_at"]) for r in found] == [(4, 15, at(24))]


@freeze_time(NOW)
def test_min_points_applies_to_the_window_total(engine: Engine) -> None:
    now = datetime.now(timezone.utc)
    with Session(engine, expire_on_commit=False) as s:
        m = b.member(s, 5, enrolled_at=now - b.days(400))
        b.earn(s, m, 30, now - b.days(360), at(27))
        b.earn(s, m, 30, now - b.days(359), at(28))
        s.commit()
        assert [r["points"] for r in digest(s, now, min_points=50)] == [60]
        assert digest(s, now, min_points=61) == []
