"""points_expiring, digested and capped: batches expiring in one 7-day window are one reminder (total,
earliest date); a member gets at most REMINDER_CAP reminders in any 30 days."""

from __future__ import annotations

import dataclasses
from bisect import bisect_right
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import sessionmaker

from channels.adapters import MemoryAdapter as Recorder
from journeys.definitions.points_expiring import REMINDER_CAP
from journeys.dsl import Journey
from journeys.engine import tick
from journeys.models import Enrollment
from journeys.registry import get_journey
from journeys.services import Services
from tests.audiences import builders

UTC = timezone.utc
START = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)  # 10:00 in Paris: the reminders' hour


def paris_midnight(day: datetime) -> datetime:
    return builders.local_midnight(day.date().isoformat(), "Europe/Paris")


def test_three_batches_in_one_window_are_one_reminder_with_their_total_and_earliest_date(
        sqlite_engine: Engine, services: Services, recorder: Recorder) -> None:
    # window 2963 of 7 days since 1970 is 2026-10-15 .. 2026-10-21 (UTC days)
    now = datetime(2026, 10, 9, 8, 0, tzinfo=UTC)  # 10:00 Paris, 7 days before the first expiry
    factory = sessionmaker(sqlite_engine, expire_on_commit=False)
    with factory() as s:
        m = builders.member(s, 1, enrolled_at=now - timedelta(days=500), zone="Europe/Paris", locale="fr-FR")
        for points, day in ((100, 16), (250, 18), (75, 20)):
            builders.earn(s, m, points, now - timedelta(days=300 - day), datetime(2026, 10, day, 12, tzinfo=UTC))
        s.commit()
    journey = get_journey("points_expiring")
    tick(factory, journey, now, services)
    with factory() as s:
        [enrollment] = s.scalars(select(Enrollment)).all()
    assert enrollment.occurrence_key == "7d:2963" and enrollment.context["points"] == 425
    [message] = recorder.requests
    assert message.step == "email_7d"
    assert "425" in message.content.subject and "vendredi 16 octobre 2026" in message.content.text


def most_in_30_days(times: list[datetime]) -> int:
    times = sorted(times)
    return max((bisect_right(times, t + timedelta(days=30) - timedelta(seconds=1)) - i for i, t in enumerate(times)),
               default=0)


def run_days(engine: Engine, journey: Journey, services: Services, recorder: Recorder, days: int) -> list[datetime]:
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as s:
        m = builders.member(s, 2, enrolled_at=START - timedelta(days=500), zone="Europe/Paris")
        for k in range(8):  # a batch expiring every 8 days: each in its own 7-day window
            expires = paris_midnight(START + timedelta(days=9 + 8 * k))
            builders.earn(s, m, 40 + k, START - timedelta(days=300 - k), expires)
        s.commit()
    for day in range(days):
        tick(factory, journey, START + timedelta(days=day), services)
    return [m.created_at for m in recorder.requests]


@pytest.mark.slow  # 70 daily ticks
def test_the_cap_holds_reminders_to_n_in_any_30_days(sqlite_engine: Engine, services: Services,
                                                      recorder: Recorder) -> None:
    sent = run_days(sqlite_engine, get_journey("points_expiring"), services, recorder, 70)
    assert most_in_30_days(sent) == REMINDER_CAP
    assert len(sent) > REMINDER_CAP  # the cap is per 30 days, not for ever


@pytest.mark.slow  # 70 daily ticks
def test_without_the_cap_the_same_member_gets_more(sqlite_engine: Engine, services: Services,
                                                   recorder: Recorder) -> None:
    capped = get_journey("points_expiring")
    uncapped = dataclasses.replace(capped, name="points_expiring_uncapped",
                                   steps=capped.earlier_versions[1], earlier_versions={})
    sent = run_days(sqlite_engine, uncapped, services, recorder, 70)
    assert most_in_30_days(sent) > REMINDER_CAP


def test_two_reminders_due_in_the_same_pass_do_not_both_pass_the_cap(
        sqlite_engine: Engine, services: Services, recorder: Recorder) -> None:
    from journeys.dsl import branch, email, send
    from journeys.reminder_cap import reminders_capped

    journey = Journey(name="capped_now", description="test", version=1, purpose="transactional",
                      audience="points_expiring", audience_params={"within_days": 31, "digest_days": 7},
                      occurrence_key="window_key",
                      steps=[branch(~reminders_capped("capped_now", at_most=1),
                                    then=[send(email("points_expiring/email_7d"))])])
    factory = sessionmaker(sqlite_engine, expire_on_commit=False)
    with factory() as s:
        m = builders.member(s, 3, enrolled_at=START - timedelta(days=500), zone="Europe/Paris")
        for days in (10, 20):  # two windows: two enrollments, both due at once
            builders.earn(s, m, 40, START - timedelta(days=300), START + timedelta(days=days))
        s.commit()
    tick(factory, journey, START, services)
    with factory() as s:
        assert len(s.scalars(select(Enrollment)).all()) == 2
    assert len(recorder.requests) == 1
