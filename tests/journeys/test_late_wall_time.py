"""A member who joins after a wait's local time has passed gets the message at that local time on the
next possible day (10:00 means 10:00, not 01:00), unless that would be past the send's stale deadline,
when it goes at once rather than never."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from journeys.models import Enrollment, SendStatus
from journeys.models import Send as LedgerRow
from journeys.registry import get_journey
from journeys.services import services_for
from journeys.simulate import run_clock, start_clocks
from tests.audiences import builders as b
from tests.journeys.recording import RecordingAdapter

UTC = timezone.utc
FIRE = datetime(2026, 11, 10, 6, 0, tzinfo=UTC)  # points_expiring's cron (06:00 UTC)


def _sent(engine: Engine) -> dict[tuple[int, str], LedgerRow]:
    with Session(engine) as s:
        rows = s.execute(select(Enrollment.recipient_id, LedgerRow).join(LedgerRow, LedgerRow.enrollment_id == Enrollment.id)
                         .where(LedgerRow.status == SendStatus.sent)).all()
    return {(member_id, row.step_key): row for member_id, row in rows}


def test_late_joiners_get_the_promised_local_time_or_at_once_before_it_goes_stale(sqlite_engine: Engine) -> None:
    b.reset_ids()
    with Session(sqlite_engine, expire_on_commit=False) as s:
        b.tiers(s)
        ny = b.member(s, 1, enrolled_at=FIRE - timedelta(days=400), zone="America/New_York")
        tokyo = b.member(s, 2, enrolled_at=FIRE - timedelta(days=400), zone="Asia/Tokyo")
        b.device(s, tokyo, FIRE - timedelta(days=300))
        # 20 days left: the 30-day reminder's 10:00 passed long ago, its stale deadline (8 days before) has not
        b.earn(s, ny, 100, FIRE - timedelta(days=300), b.local_midnight("2026-11-30", "America/New_York"))
        # 9 hours left in Tokyo (15:00 local at the fire): the last call's 10:00 today passed, tomorrow's is too late
        b.earn(s, tokyo, 100, FIRE - timedelta(days=300), b.local_midnight("2026-11-11", "Asia/Tokyo"))
        s.commit()
    rec = RecordingAdapter()
    services = services_for(rec)
    factory = sessionmaker(sqlite_engine, expire_on_commit=False)
    defs = {"points_expiring": get_journey("points_expiring")}
    start_clocks(factory, defs, FIRE)
    for _ in run_clock(factory, defs, FIRE, FIRE + timedelta(days=1), services):
        pass
    sent = _sent(sqlite_engine)
    first = sent[(1, "email_30d")]
    local = first.sent_at.astimezone(ZoneInfo("America/New_York"))  # type: ignore[union-attr]
    assert local.date().isoformat() == "2026-11-10" and time(10) <= local.time() < time(10, 1)
    last_call = sent[(2, "last_call_1d")]
    assert last_call.sent_at == FIRE  # at once: tomorrow's 10:00 in Tokyo is after the points expire
    assert last_call.sent_at < b.local_midnight("2026-11-11", "Asia/Tokyo")
