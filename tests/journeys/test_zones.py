"""A recipient without a usable time zone: their home store's zone, else LOYALFLOW_DEFAULT_TIME_ZONE,
else the send is skipped `invalid_time_zone`; never UTC silently, and every fallback is counted."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from audiences.models import StaffRole, Store
from journeys.dsl import Journey, email, send, sms, wait
from journeys.engine import tick
from journeys.models import Enrollment
from journeys.models import Send as LedgerRow
from journeys.registry import get_journey
from journeys.services import services_for
from journeys.zones import DEFAULT, NONE, OWN, STORE, resolve
from tests.audiences import builders as b
from tests.journeys.recording import RecordingAdapter

UTC = timezone.utc
# 14:00 UTC: 23:00 in Tokyo (quiet), 09:00 in New York, 14:00 in UTC (neither quiet)
TOKYO_NIGHT = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
# 10:00 UTC: 05:00 in New York (quiet), 19:00 in Tokyo, 10:00 in UTC (neither quiet)
NEW_YORK_NIGHT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

NOTE = Journey(name="zone_note", description="test", version=1, purpose="transactional", audience="new_members",
               audience_params={"within_days": 3}, schedule="0 * * * *",
               steps=[send(sms("welcome/sms_tips")), wait(days=1, at="10:00"), send(email("welcome/email_welcome"))])


def member_without_zone(engine: Engine, member_id: int, joined: datetime, zone: str = "",
                        store_zone: str | None = None) -> None:
    with Session(engine) as s:
        m = b.member(s, member_id, enrolled_at=joined, zone=zone)
        m.phone = "+12015550199"
        if store_zone is not None:
            store = Store(id=member_id, code=f"S{member_id}", name="Store", country="JP", time_zone=store_zone)
            s.add(store)
            s.flush()
            older = b.buy(s, m, "10.00", joined - timedelta(days=30))  # an online order (no store) is newer
            older.store_id = store.id
            b.buy(s, m, "12.00", joined - timedelta(days=2))
        s.commit()


def run(engine: Engine, now: datetime, rec: RecordingAdapter, monkeypatch: pytest.MonkeyPatch,
        default: str | None = None):  # type: ignore[no-untyped-def]
    if default:
        monkeypatch.setenv("LOYALFLOW_DEFAULT_TIME_ZONE", default)
    else:
        monkeypatch.delenv("LOYALFLOW_DEFAULT_TIME_ZONE", raising=False)
    services = services_for(rec)
    return tick(sessionmaker(engine, expire_on_commit=False), NOTE, now, services)


def ledger(engine: Engine) -> dict[str, tuple[str, str | None, datetime | None]]:
    with Session(engine) as s:
        return {r.step_key: (r.status.value, r.reason, r.sent_at) for r in s.scalars(select(LedgerRow))}


def test_the_home_store_zone_keeps_quiet_hours_and_local_days(sqlite_engine: Engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    member_without_zone(sqlite_engine, 1, TOKYO_NIGHT - timedelta(hours=1), store_zone="Asia/Tokyo")
    rec = RecordingAdapter()
    stats = run(sqlite_engine, TOKYO_NIGHT, rec, monkeypatch, default="America/New_York")
    assert stats.zone_fallback == {STORE: 1} and rec.messages == []  # 23:00 in Tokyo: deferred, not texted
    assert ledger(sqlite_engine)["sms_tips"][:2] == ("deferred", "quiet_hours")
    with Session(sqlite_engine) as s:
        due = s.scalar(select(Enrollment.due_at))
    assert due == datetime(2026, 11, 24, 8, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # the end of Tokyo's quiet hours
    assert run(sqlite_engine, due, rec, monkeypatch).sent == {"sms": 1}  # type: ignore[arg-type]
    with Session(sqlite_engine) as s:
        due = s.scalar(select(Enrollment.due_at))
    assert due == datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # the wait's local day and hour
    assert run(sqlite_engine, due, rec, monkeypatch).sent == {"email": 1}  # type: ignore[arg-type]


def test_the_program_default_when_there_is_no_store(sqlite_engine: Engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    member_without_zone(sqlite_engine, 1, NEW_YORK_NIGHT - timedelta(hours=1), zone="Mars/Olympus_Mons")
    rec = RecordingAdapter()
    stats = run(sqlite_engine, NEW_YORK_NIGHT, rec, monkeypatch, default="America/New_York")
    assert stats.zone_fallback == {DEFAULT: 1} and rec.messages == []  # 05:00 in New York: not texted
    with Session(sqlite_engine) as s:
        due = s.scalar(select(Enrollment.due_at))
    assert due == datetime(2026, 11, 23, 8, 0, tzinfo=ZoneInfo("America/New_York"))
    stats = run(sqlite_engine, due, rec, monkeypatch, default="America/New_York")  # type: ignore[arg-type]
    assert stats.sent == {"sms": 1} and stats.zone_fallback == {DEFAULT: 1}
    assert [m.channel for m in rec.messages] == ["sms"]


def test_without_store_or_default_the_send_is_skipped_not_timed_in_utc(sqlite_engine: Engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    member_without_zone(sqlite_engine, 1, NEW_YORK_NIGHT - timedelta(hours=1))
    rec = RecordingAdapter()
    stats = run(sqlite_engine, NEW_YORK_NIGHT, rec, monkeypatch)
    assert stats.zone_fallback == {NONE: 1} and stats.skipped == {"invalid_time_zone": 1}
    assert rec.messages == [] and ledger(sqlite_engine)["sms_tips"][:2] == ("skipped", "invalid_time_zone")


def test_resolution_order_for_members_and_staff(sqlite_engine: Engine) -> None:
    with Session(sqlite_engine) as s:
        north = b.store(s, 1, "North")  # New York
        kolkata = Store(id=2, code="S2", name="Kolkata", country="IN", time_zone="Asia/Kolkata")
        s.add(kolkata)
        s.flush()
        b.staff(s, 1, StaffRole.associate, north)
        b.staff(s, 2, StaffRole.associate, None)
        m = b.member(s, 5, enrolled_at=TOKYO_NIGHT, zone="")
        for store, days_ago in ((north, 40), (kolkata, 10)):
            p = b.buy(s, m, "5.00", TOKYO_NIGHT - timedelta(days=days_ago))
            p.store_id = store.id
        s.commit()
        found = resolve(s, [("member", 5, ""), ("member", 6, "Europe/Paris"), ("staff", 1, "America"),
                            ("staff", 2, None), ("member", 7, " UTC")], "Europe/London")
    assert {k: (z.name, z.source) for k, z in found.items()} == {
        ("member", 5): ("Asia/Kolkata", STORE),  # the store of the latest in-store purchase
        ("member", 6): ("Europe/Paris", OWN),
        ("staff", 1): ("America/New_York", STORE),
        ("staff", 2): ("Europe/London", DEFAULT),
        ("member", 7): ("Europe/London", DEFAULT),
    }


def test_an_unknown_default_zone_is_refused_by_name(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from channels.settings import channel_settings

    monkeypatch.setenv("LOYALFLOW_DEFAULT_TIME_ZONE", "Mars/Olympus_Mons")
    with pytest.raises(ValidationError, match="default_time_zone") as info:
        channel_settings()
    assert "Mars/Olympus_Mons" in str(info.value)


def test_points_expiring_last_call_uses_the_store_zone_day(sqlite_engine: Engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The shipped journey, a member with no zone whose store is in Auckland: 10:00 Auckland, day before expiry."""
    now = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    expires = b.local_midnight("2026-11-27", "Pacific/Auckland")
    with Session(sqlite_engine) as s:
        m = b.member(s, 1, enrolled_at=now - timedelta(days=300), zone="")
        m.phone = "+12015550123"
        store = Store(id=9, code="S9", name="Auckland", country="NZ", time_zone="Pacific/Auckland")
        s.add(store)
        s.flush()
        b.buy(s, m, "9.00", now - timedelta(days=100)).store_id = store.id
        b.earn(s, m, 300, now - timedelta(days=200), expires)
        s.commit()
    monkeypatch.delenv("LOYALFLOW_DEFAULT_TIME_ZONE", raising=False)
    rec = RecordingAdapter()
    services = services_for(rec)
    factory = sessionmaker(sqlite_engine, expire_on_commit=False)
    journey = get_journey("points_expiring")
    tick(factory, journey, now, services)
    with Session(sqlite_engine) as s:
        due = s.scalar(select(Enrollment.due_at))
    assert due is not None and due.astimezone(ZoneInfo("Pacific/Auckland")).replace(tzinfo=None) == \
        datetime(2026, 11, 26, 10, 0)
    stats = tick(factory, journey, due + timedelta(seconds=30), services)
    assert stats.sent == {"sms": 1} and stats.zone_fallback == {STORE: 1}
    assert rec.messages[-1].step == "last_call_1d"
    assert due.astimezone(ZoneInfo("Pacific/Auckland")).time() == time(10, 0)
