"""The embedded scheduler driven on its own fire times (its stored jobs' triggers, every one of them):
a 10:00-local step lands between 10:00 and 10:01 local in New York, Kolkata and Tokyo, the Monday
bulletin goes on Monday, and a pass that fails is caught up by the next attempt without losing a step."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from audiences.models import StaffRole
from flows import scheduler as embedded
from journeys.models import Send, SendStatus
from journeys.registry import journeys
from journeys.services import services_for
from tests.audiences import builders as b
from tests.journeys.recording import RecordingAdapter

MONDAY = datetime(2026, 11, 23, 0, 0, tzinfo=timezone.utc)
ZONES = {1: "America/New_York", 2: "Asia/Kolkata", 3: "Asia/Tokyo"}


def scheduler_fires(engine: Engine, start: datetime, end: datetime) -> list[datetime]:
    """Every instant the scheduler's stored jobs fire in [start, end): the minute pass and each journey's cron."""
    scheduler = embedded.build(engine)
    scheduler.start(paused=True)
    try:
        embedded.sync_jobs(scheduler, journeys())
        return sorted({f for job in scheduler.get_jobs() for f in embedded.fire_times(job.trigger, start, end)})
    finally:
        scheduler.shutdown(wait=False)


def program(engine: Engine) -> None:
    """Three members whose points expire at local midnight on 24 December (the 30-day reminder is due
    at 10:00 local on 24 November), and two staff for the Monday bulletin."""
    b.reset_ids()
    with Session(engine, expire_on_commit=False) as s:
        b.tiers(s)
        for member_id, zone in ZONES.items():
            m = b.member(s, member_id, enrolled_at=datetime(2025, 1, 1, tzinfo=timezone.utc), zone=zone)
            b.earn(s, m, 500, datetime(2025, 12, 24, tzinfo=timezone.utc), b.local_midnight("2026-12-24", zone))
        store = b.store(s, 1, "North")
        b.staff(s, 1, StaffRole.store_manager, store)
        b.staff(s, 2, StaffRole.associate, store)
        s.commit()


def sends(engine: Engine, journey: str) -> list[Send]:
    with Session(engine) as s:
        return list(s.scalars(select(Send).where(Send.journey == journey).order_by(Send.recipient_id)))


@pytest.mark.slow
def test_steps_land_in_the_minute_they_are_due_on_the_schedulers_own_cadence(sqlite_engine: Engine) -> None:
    rec = RecordingAdapter()
    services = services_for(rec)
    clock = [MONDAY]
    runner = embedded.PassRunner(sessionmaker(sqlite_engine, expire_on_commit=False), journeys(), services,
                                 clock=lambda: clock[0], probes=[])
    assert runner.step()  # the program has been running: every journey's clock starts at its latest fire
    program(sqlite_engine)

    end = MONDAY + timedelta(days=1, hours=16)  # Tuesday 11:00 in New York
    fires = scheduler_fires(sqlite_engine, MONDAY + timedelta(seconds=1), end)
    assert len(fires) == 40 * 60 - 1  # the minute pass (journey crons fire on whole minutes, with it)
    for fire in fires:
        clock[0] = fire + timedelta(milliseconds=250)  # a job runs a moment after its fire time
        assert runner.step()

    reminders = sends(sqlite_engine, "points_expiring")
    assert [(r.recipient_id, r.status) for r in reminders] == [(i, SendStatus.sent) for i in ZONES]
    for r in reminders:
        local = r.sent_at.astimezone(ZoneInfo(ZONES[r.recipient_id]))
        assert local.date().isoformat() == "2026-11-24"
        assert (local.hour, local.minute) == (10, 0), (ZONES[r.recipient_id], local)

    bulletins = sends(sqlite_engine, "staff_bulletin")
    assert [(r.recipient_id, r.status) for r in bulletins] == [(1, SendStatus.sent), (2, SendStatus.sent)]
    assert {r.sent_at.astimezone(timezone.utc).strftime("%A %H:%M") for r in bulletins} == {"Monday 07:00"}


@pytest.mark.slow
def test_a_pass_that_fails_at_the_due_minute_is_made_good_by_the_retry(sqlite_engine: Engine) -> None:
    """The database refuses the pass at 10:00 New York time; the retry a second later sends the step."""
    rec = RecordingAdapter()
    services = services_for(rec)
    clock = [MONDAY + timedelta(hours=6, minutes=59)]
    factory = sessionmaker(sqlite_engine, expire_on_commit=False)
    broken = [False]

    def sessions() -> Session:
        if broken[0]:
            from sqlalchemy.exc import OperationalError

            raise OperationalError("connect", {}, Exception("connection refused"))
        return factory()

    runner = embedded.PassRunner(sessions, journeys(), services, clock=lambda: clock[0], probes=[])
    assert runner.step()
    program(sqlite_engine)
    clock[0] = datetime(2026, 11, 24, 14, 59, tzinfo=timezone.utc)
    assert runner.step()  # enrolls (06:00 fire of both days coalesced) and parks the reminders until 10:00 local
    clock[0] = datetime(2026, 11, 24, 15, 0, 0, 250_000, tzinfo=timezone.utc)  # 10:00:00 in New York
    broken[0] = True
    assert not runner.step() and runner.failures == 1
    broken[0] = False
    clock[0] += timedelta(seconds=1)  # the retry, one second later
    assert runner.step() and runner.failures == 0
    ny = [r for r in sends(sqlite_engine, "points_expiring") if r.recipient_id == 1]
    assert len(ny) == 1 and ny[0].status == SendStatus.sent
    assert ny[0].sent_at.astimezone(ZoneInfo(ZONES[1])).strftime("%H:%M:%S") == "10:00:01"
