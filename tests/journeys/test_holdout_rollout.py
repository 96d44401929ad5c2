"""Holdout and rollout buckets: the right share, the same every run, the same in Python and SQL,
and independent of each other (a rollout does not change who is held out)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import sessionmaker

from audiences.models import Member
from journeys.dsl import Journey, email, send
from journeys.enroll import enroll
from journeys.holdout import BUCKETS, bucket, bucket_sql, threshold
from journeys.models import Enrollment, EnrollmentStatus

UTC = timezone.utc
NOW = datetime(2027, 3, 26, 9, 0, tzinfo=UTC)
N = 100_000
HOLDOUT, ROLLOUT = 10.0, 30.0
PP = 0.01  # one percentage point

TEST_JOURNEY = Journey(
    name="bucket_test", description="holdout 10 %, rollout 30 %", version=1, purpose="transactional",
    audience="new_members", audience_params={"within_days": 3}, holdout_percent=HOLDOUT, rollout_percent=ROLLOUT,
    steps=[send(email("welcome/email_welcome"))],
)
HIGH_IDS = [i * 107_361 for i in range(1, 20_001)]  # up to 2,147,220,000: far above 2**31 / 7919 (271,183)


def held_out(member_id: int, journey: str = TEST_JOURNEY.name) -> bool:
    return bucket(member_id, journey, "holdout") < threshold(HOLDOUT)


def rolled_out(member_id: int, journey: str = TEST_JOURNEY.name) -> bool:
    return bucket(member_id, journey, "rollout") < threshold(ROLLOUT)


def insert_members(engine: Engine, ids: Iterable[int]) -> None:
    """Members only, all active and enrolled an hour before NOW: one executemany."""
    joined = NOW - timedelta(hours=1)
    rows = [{"id": i, "first_name": None, "last_name": None, "email": None, "phone": None, "locale": "en",
             "time_zone": "UTC", "country": "US", "enrolled_at": joined, "status": "active", "tier_id": None}
            for i in ids]
    with engine.begin() as conn:
        conn.execute(insert(Member.__table__), rows)


# --- Python --------------------------------------------------------------------------------------

@pytest.mark.parametrize("start", [1, 2**31 // 7_919, 1_500_000_000])
def test_python_buckets_hold_the_percentages_and_are_independent(start: int) -> None:
    ids = range(start, start + N)
    hold = {i for i in ids if held_out(i)}
    roll = {i for i in ids if rolled_out(i)}
    assert abs(len(hold) / N - HOLDOUT / 100) < PP
    assert abs(len(roll) / N - ROLLOUT / 100) < PP
    both = len(hold & roll) / N
    assert abs(both - (len(hold) / N) * (len(roll) / N)) < 0.2 * PP  # overlap ~ product (3 %)
    assert abs(len(hold & roll) / len(roll) - HOLDOUT / 100) < PP  # holdout share inside the rollout


@pytest.mark.parametrize("percent", [1.0, 5.0, 25.0, 50.0, 99.0])
@pytest.mark.parametrize("journey", ["welcome", "points_expiring", "tier_up", "win_back", "staff_bulletin"])
def test_every_journey_gets_its_share_at_other_percentages(journey: str, percent: float) -> None:
    limit = threshold(percent)
    for purpose in ("holdout", "rollout"):
        share = sum(bucket(i, journey, purpose) < limit for i in range(1, 20_001)) / 20_000
        assert abs(share - percent / 100) < PP, (journey, purpose, share)


def test_buckets_differ_per_journey_and_purpose() -> None:
    ids = range(1, 10_001)
    a = {i for i in ids if held_out(i, "welcome")}
    b = {i for i in ids if held_out(i, "win_back")}
    c = {i for i in ids if bucket(i, "welcome", "rollout") < threshold(HOLDOUT)}
    assert a != b and a != c
    assert abs(len(a & b) / 10_000 - 0.01) < 0.005  # the same members are not held out of every journey


def test_threshold_edges() -> None:
    assert threshold(0) == 0 and threshold(100) == BUCKETS
    assert all(0 <= bucket(i, "welcome", "holdout") < BUCKETS for i in (0, 1, 7_919, 2**31 - 1, 2**40))
    assert not any(bucket(i, "welcome", "holdout") < threshold(0) for i in range(1, 5_000))
    assert all(bucket(i, "welcome", "rollout") < threshold(100) for i in range(1, 5_000))


def test_python_buckets_are_the_same_in_another_process() -> None:
    """No dependence on hash() randomisation or anything else of one interpreter run."""
    ids = list(range(1, 2_001)) + HIGH_IDS[-2_000:]
    code = ("import json, sys; from journeys.holdout import bucket; "
            "print(json.dumps([bucket(i, 'welcome', p) for i in json.load(sys.stdin)"
            " for p in ('holdout', 'rollout')]))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(ids), capture_output=True, text=True,
                         check=True, env=env).stdout
    assert json.loads(out) == [bucket(i, "welcome", p) for i in ids for p in ("holdout", "rollout")]


# --- SQL -----------------------------------------------------------------------------------------

def _statuses(engine: Engine) -> dict[int, EnrollmentStatus]:
    with sessionmaker(engine)() as session:
        rows = session.execute(select(Enrollment.recipient_id, Enrollment.status)
                               .where(Enrollment.journey == TEST_JOURNEY.name))
        return {recipient_id: status for recipient_id, status in rows}


def test_sql_enrollment_of_100k_members_holds_the_percentages_and_matches_python(sqlite_engine: Engine) -> None:
    insert_members(sqlite_engine, range(1, N + 1))
    with sessionmaker(sqlite_engine)() as session:
        result = enroll(session, TEST_JOURNEY, NOW)
        session.commit()
    statuses = _statuses(sqlite_engine)
    assert result.enrolled == len(statuses)
    assert abs(result.enrolled / N - ROLLOUT / 100) < PP
    assert abs(result.held_out / result.enrolled - HOLDOUT / 100) < PP

    # every member: enrolled iff in the rollout, held out iff also in the holdout (Python agrees)
    assert set(statuses) == {i for i in range(1, N + 1) if rolled_out(i)}
    assert {i for i, s in statuses.items() if s is EnrollmentStatus.held_out} == \
        {i for i in statuses if held_out(i)}
    assert set(statuses.values()) == {EnrollmentStatus.active, EnrollmentStatus.held_out}

    # the SQL expression itself, for all members and both purposes
    with sqlite_engine.connect() as conn:
        rows = conn.execute(select(Member.id, bucket_sql(Member.id, TEST_JOURNEY.name, "holdout"),
                                   bucket_sql(Member.id, TEST_JOURNEY.name, "rollout"))).all()
    assert len(rows) == N
    mismatched = [r for r in rows if (r[1], r[2]) != (bucket(r[0], TEST_JOURNEY.name, "holdout"),
                                                      bucket(r[0], TEST_JOURNEY.name, "rollout"))]
    assert mismatched == []
    hold = sum(r[1] < threshold(HOLDOUT) for r in rows) / N
    roll = sum(r[2] < threshold(ROLLOUT) for r in rows) / N
    both = sum(r[1] < threshold(HOLDOUT) and r[2] < threshold(ROLLOUT) for r in rows) / N
    assert abs(both - hold * roll) < 0.2 * PP

    # stable: a later run enrolls nobody again and changes nobody's group
    with sessionmaker(sqlite_engine)() as session:
        again = enroll(session, TEST_JOURNEY, NOW + timedelta(hours=1))
        session.commit()
    assert (again.enrolled, again.held_out) == (0, 0)
    assert _statuses(sqlite_engine) == statuses


def test_raising_the_rollout_keeps_everyone_already_in_and_their_holdout(sqlite_engine: Engine) -> None:
    insert_members(sqlite_engine, range(1, 20_001))
    with sessionmaker(sqlite_engine)() as session:
        enroll(session, TEST_JOURNEY, NOW)
        session.commit()
    first = _statuses(sqlite_engine)
    wider = Journey(**{**TEST_JOURNEY.__dict__, "rollout_percent": 60.0})
    with sessionmaker(sqlite_engine)() as session:
        enroll(session, wider, NOW + timedelta(minutes=5))
        session.commit()
    second = _statuses(sqlite_engine)
    assert {i: second[i] for i in first} == first
    assert abs(len(second) / 20_000 - 0.6) < PP
    assert {i for i, s in second.items() if s is EnrollmentStatus.held_out} == {i for i in second if held_out(i)}


def test_sql_buckets_equal_python_for_ids_near_int4_limit(engine: Engine) -> None:
    """On PostgreSQL, an int4 product recipient_id * 7919 would overflow above 271,183."""
    insert_members(engine, HIGH_IDS)
    with engine.connect() as conn:
        rows = conn.execute(select(Member.id, bucket_sql(Member.id, TEST_JOURNEY.name, "holdout"),
                                   bucket_sql(Member.id, TEST_JOURNEY.name, "rollout"))).all()
    assert len(rows) == len(HIGH_IDS)
    assert {r[0]: (r[1], r[2]) for r in rows} == {
        i: (bucket(i, TEST_JOURNEY.name, "holdout"), bucket(i, TEST_JOURNEY.name, "rollout")) for i in HIGH_IDS}

    with sessionmaker(engine)() as session:
        result = enroll(session, TEST_JOURNEY, NOW)
        session.commit()
    statuses = _statuses(engine)
    assert set(statuses) == {i for i in HIGH_IDS if rolled_out(i)}
    assert {i for i, s in statuses.items() if s is EnrollmentStatus.held_out} == {i for i in statuses if held_out(i)}
    sigma = (ROLLOUT / 100 * (1 - ROLLOUT / 100) / len(HIGH_IDS)) ** 0.5  # 0.32 pp at 20,000
    assert result.enrolled == len(statuses)
    assert abs(result.enrolled / len(HIGH_IDS) - ROLLOUT / 100) < 4 * sigma
    with sessionmaker(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Enrollment)) == result.enrolled


def test_enrollment_reports_what_it_inserted_on_both_databases(engine: Engine) -> None:
    """The counts come from the INSERT's RETURNING (the rows it made), not from counting the journey's rows."""
    insert_members(engine, range(1, 2_001))
    with sessionmaker(engine)() as session:
        first = enroll(session, TEST_JOURNEY, NOW)
        session.commit()
    statuses = _statuses(engine)
    assert (first.enrolled, first.held_out) == (len(statuses), sum(s is EnrollmentStatus.held_out for s in statuses.values()))
    assert first.held_out > 0 and first.enrolled > first.held_out
    insert_members(engine, range(2_001, 3_001))  # newcomers: only they are counted by the next run
    with sessionmaker(engine)() as session:
        second = enroll(session, TEST_JOURNEY, NOW + timedelta(hours=1))
        session.commit()
    after = _statuses(engine)
    assert second.enrolled == len(after) - len(statuses) > 0
    assert second.held_out == sum(s is EnrollmentStatus.held_out for i, s in after.items() if i > 2_000)
