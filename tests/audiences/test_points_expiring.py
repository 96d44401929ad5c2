"""points_expiring: per batch, net of oldest-first redemptions, exact window edges, far zones."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from freezegun import freeze_time
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from audiences.models import MemberStatus, PointsKind
from audiences.queries import get_audience
from tests.audiences import builders as b

NOW = "2026-11-23T00:00:00+00:00"
AUD = get_audience("points_expiring")


def rows(session: Session, now: datetime, **params: int) -> list[dict]:
    return [dict(r) for r in session.execute(AUD.query(now, **params).select()).mappings()]


def by_member(found: list[dict]) -> dict[int, list[tuple[int, int]]]:
    out: dict[int, list[tuple[int, int]]] = {}
    for r in found:
        out.setdefault(r["recipient_id"], []).append((r["batch_id"], r["points"]))
    return out


@freeze_time(NOW)
def test_redemptions_consume_the_oldest_batch_first(engine: Engine) -> None:
    now = datetime.now(timezone.utc)
    with Session(engine, expire_on_commit=False) as s:
        m = b.member(s, 1, enrolled_at=now - b.days(400))
        old = b.earn(s, m, 100, now - b.days(350), now + b.days(15))
        young = b.earn(s, m, 200, now - b.days(340), now + b.days(25))
        b.spend(s, m, 150, now - b.days(100))  # all of `old`, 50 of `young`
        s.commit()
        found = rows(s, now)
    assert by_member(found) == {1: [(young.id, 150)]}
    assert found[0]["balance"] == 150


@freeze_time(NOW)
def test_two_batches_of_one_member_are_two_rows_but_one_recipient(engine: Engine) -> None:
    now = datetime.now(timezone.utc)
    with Session(engine, expire_on_commit=False) as s:
        m = b.member(s, 2, enrolled_at=now - b.days(400))
        first = b.earn(s, m, 50, now - b.days(360), now + b.days(5))
        second = b.earn(s, m, 70, now - b.days(355), now + b.days(10))
        b.earn(s, m, 999, now - b.days(10), now + b.days(355))  # far from expiring
        s.commit()
        assert by_member(rows(s, now)) == {2: [(first.id, 50), (second.id, 70)]}
        assert AUD.count(s, now) == 1


@freeze_time(NOW)
def test_window_edges_end_included_start_excluded(engine: Engine) -> None:
    now = datetime.now(timezone.utc)
    with Session(engine, expire_on_commit=False) as s:
        at_edge = b.member(s, 3, enrolled_at=now - b.days(400))
        b.earn(s, at_edge, 10, now - b.days(335), now + b.days(30))            # exactly at the edge: in
        past_edge = b.member(s, 4, enrolled_at=now - b.days(400))
        b.earn(s, past_edge, 10, now - b.days(335), now + b.days(30) + timedelta(seconds=1))  # out
        expiring_now = b.member(s, 5, enrolled_at=now - b.days(400))
        b.earn(s, expiring_now, 10, now - b.days(365), now)                    # expires at now: out
        s.commit()
        assert sorted(by_member(rows(s, now))) == [3]
        assert sorted(by_member(rows(s, now, within_days=31))) == [3, 4]


@freeze_time(NOW)
def test_far_time_zones_compare_instants_not_local_dates(engine: Engine) -> None:
    """Both batches expire at local midnight starting 2026-12-23; only Kiritimati's is within 30 days."""
    now = datetime.now(timezone.utc)
    with Session(engine, expire_on_commit=False) as s:
        east = b.member(s, 6, enrolled_at=now - b.days(400), zone="Pacific/Kiritimati")  # UTC+14
        west = b.member(s, 7, enrolled_at=now - b.days(400), zone="Pacific/Pago_Pago")   # UTC-11
        b.earn(s, east, 40, now - b.days(330), b.local_midnight("2026-12-23", "Pacific/Kiritimati"))
        b.earn(s, west, 40, now - b.days(330), b.local_midnight("2026-12-23", "Pacific/Pago_Pago"))
        s.commit()
        assert sorted(by_member(rows(s, now))) == [6]
        assert sorted(by_member(rows(s, now + timedelta(hours=11)))) == [6, 7]


@freeze_time(NOW)
def test_ledger_after_now_and_inactive_members_are_ignored(engine: Engine) -> None:
    now = datetime.now(timezone.utc)
    with Session(engine, expire_on_commit=False) as s:
        m = b.member(s, 8, enrolled_at=now - b.days(400))
        batch = b.earn(s, m, 60, now - b.days(340), now + b.days(20))
        b.spend(s, m, 60, now + b.days(1))  # a redemption after `now` has not happened yet
        closed = b.member(s, 9, enrolled_at=now - b.days(400), status=MemberStatus.closed)
        b.earn(s, closed, 60, now - b.days(340), now + b.days(20))
        s.commit()
        assert by_member(rows(s, now)) == {8: [(batch.id, 60)]}
        assert by_member(rows(s, now + b.days(2))) == {}


@freeze_time(NOW)
def test_expiry_entries_and_negative_adjustments_consume_like_redemptions(engine: Engine) -> None:
    now = datetime.now(timezone.utc)
    with Session(engine, expire_on_commit=False) as s:
        m = b.member(s, 10, enrolled_at=now - b.days(800))
        b.earn(s, m, 30, now - b.days(700), now - b.days(335))     # expired last year...
        b.spend(s, m, 30, now - b.days(335), PointsKind.expire)    # ...and its expiry recorded
        live = b.earn(s, m, 80, now - b.days(340), now + b.days(25))
        b.spend(s, m, 20, now - b.days(50), PointsKind.adjust)
        s.commit()
        assert by_member(rows(s, now)) == {10: [(live.id, 60)]}


@freeze_time(NOW)
def test_explain_names_the_failing_criterion(engine: Engine) -> None:
    now = datetime.now(timezone.utc)
    with Session(engine, expire_on_commit=False) as s:
        m = b.member(s, 11, enrolled_at=now - b.days(400))
        b.earn(s, m, 100, now - b.days(340), now + b.days(20))
        b.spend(s, m, 100, now - b.days(3))
        s.commit()
        why = AUD.explain(s, now, 11)
        assert why.exists and not why.included
        failed = [c.name for c in why.rows[0].criteria if not c.passed]
        assert failed == ["points_left"]
        nobody = AUD.explain(s, now, 424242)
        assert not nobody.exists and "no member with id 424242" in (nobody.no_rows_reason or "")


@freeze_time(NOW)
def test_batches_earned_at_the_same_instant_keep_their_order(engine: Engine) -> None:
    """Two batches at one instant: FIFO order falls back to the ledger id, in rows and in the count."""
    now = datetime.now(timezone.utc)
    with Session(engine, expire_on_commit=False) as s:
        m = b.member(s, 12, enrolled_at=now - b.days(400))
        at = now - b.days(340)
        first = b.earn(s, m, 50, at, now + b.days(10))     # in the window
        b.earn(s, m, 70, at, now + b.days(200))            # same instant, later id, far expiry
        b.spend(s, m, 60, now - b.days(5))                 # all of `first`, 10 of the second
        other = b.member(s, 13, enrolled_at=now - b.days(400))
        b.earn(s, other, 70, at, now + b.days(200))
        kept = b.earn(s, other, 50, at, now + b.days(10))  # in the window, but later in FIFO order
        b.spend(s, other, 60, now - b.days(5))             # 60 of the first 70: `kept` is untouched
        s.commit()
        assert by_member(rows(s, now)) == {13: [(kept.id, 50)]}
        assert AUD.count(s, now) == 1 and first.id < kept.id
