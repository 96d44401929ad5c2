"""The per-chunk writes and id lists (journeys/bulk.py, audiences/id_lists.py) on both databases:
PostgreSQL takes a chunk as arrays (UPDATE .. FROM unnest, INSERT .. SELECT FROM unnest, = ANY), SQLite
as executemany and IN lists; both must leave the same rows."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from audiences.id_lists import text_in
from journeys.bulk import id_in, instant_writer, update_by_id
from journeys.dsl import Journey, email, send
from journeys.ledger import reserve
from journeys.models import Enrollment, EnrollmentStatus, Send, SendStatus
from journeys.state import EnrollmentRow

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def _enrollments(session: Session, n: int) -> list[Enrollment]:
    rows = [Enrollment(journey="bulk_test", journey_version=1, recipient_kind="member", recipient_id=i,
                       occurrence_key="once", enrolled_at=NOW, status=EnrollmentStatus.active, step_index=0,
                       due_at=NOW, context={}, updated_at=NOW, lease_owner="w", lease_until=NOW + timedelta(minutes=15))
            for i in range(1, n + 1)]
    session.add_all(rows)
    session.commit()
    return rows


def test_update_by_id_sets_each_row_its_own_values_and_the_fixed_ones(engine: Engine) -> None:
    with Session(engine) as s:
        rows = _enrollments(s, 7)
        instant = instant_writer(s)
        later = NOW + timedelta(days=1)
        changed = [(3, instant(later), "active", None, rows[0].id), (5, None, "exited", "spent", rows[3].id)]
        update_by_id(s, "enrollments", [("step_index", "integer"), ("due_at", "timestamp"), ("status", "varchar"),
                                        ("exit_reason", "varchar")], changed,
                     fixed="lease_owner = NULL, lease_until = NULL, updated_at = {p}", fixed_params=[instant(later)])
        s.commit()
        got = {e.id: e for e in s.scalars(select(Enrollment))}
        assert (got[rows[0].id].step_index, got[rows[0].id].due_at, got[rows[0].id].lease_owner) == (3, later, None)
        assert got[rows[3].id].status is EnrollmentStatus.exited and got[rows[3].id].exit_reason == "spent"
        assert got[rows[3].id].due_at is None and got[rows[3].id].updated_at == later
        untouched = [e for i, e in got.items() if i not in (rows[0].id, rows[3].id)]
        assert {(e.step_index, e.lease_owner, e.updated_at) for e in untouched} == {(0, "w", NOW)}


def test_instants_written_in_bulk_are_stored_as_the_orm_stores_them(engine: Engine) -> None:
    """A due_at written by the chunk's bulk UPDATE must compare (in SQL, as text on SQLite) with one the ORM
    wrote: same instants given in UTC, in another zone and with no microseconds store identical values."""
    from zoneinfo import ZoneInfo

    from sqlalchemy import text

    instants = [NOW + timedelta(microseconds=123), NOW.astimezone(ZoneInfo("America/New_York")),
                datetime(2027, 3, 28, 1, 30, 5, tzinfo=ZoneInfo("Europe/Paris"))]
    with Session(engine) as s:
        rows = _enrollments(s, 2 * len(instants))
        instant = instant_writer(s)
        for row, value in zip(rows[:len(instants)], instants):
            row.due_at = value  # the ORM's own write (UTCDateTime)
        s.commit()
        update_by_id(s, "enrollments", [("due_at", "timestamp")],
                     [(instant(value), row.id) for row, value in zip(rows[len(instants):], instants)])
        s.commit()
        stored = [s.execute(text("SELECT CAST(due_at AS VARCHAR(40)) FROM enrollments WHERE id = :i"), {"i": r.id}).scalar()
                  for r in rows]
        assert stored[:len(instants)] == stored[len(instants):]
        assert [s.get(Enrollment, r.id).due_at for r in rows[len(instants):]] == instants
    try:
        instant(datetime(2026, 1, 1))
    except ValueError as exc:
        assert "naive datetime" in str(exc)
    else:
        raise AssertionError("a naive datetime was written")


def test_update_by_id_leaves_rows_the_condition_excludes(engine: Engine) -> None:
    with Session(engine) as s:
        rows = _enrollments(s, 3)
        update_by_id(s, "enrollments", [("exit_reason", "varchar")], [("x", r.id) for r in rows],
                     where=f"t.recipient_id <> {rows[1].recipient_id}")
        s.commit()
        reasons = dict(s.execute(select(Enrollment.id, Enrollment.exit_reason)).all())
        assert reasons == {rows[0].id: "x", rows[1].id: None, rows[2].id: "x"}


def test_id_in_selects_exactly_the_listed_ids(engine: Engine) -> None:
    with Session(engine) as s:
        rows = _enrollments(s, 6)
        wanted = [rows[1].id, rows[4].id, 10_000]
        assert sorted(s.scalars(select(Enrollment.id).where(id_in(s, Enrollment.id, wanted)))) == wanted[:2]
        assert list(s.scalars(select(Enrollment.id).where(id_in(s, Enrollment.id, [])))) == []
        # one parameter whatever the length: more ids than SQLite takes bound variables (32,766 by default)
        cap = 40_000
        if engine.dialect.name == "sqlite":
            cap = s.connection().connection.driver_connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        many = list(range(10_000, 10_001 + cap)) + [rows[0].id]
        assert list(s.scalars(select(Enrollment.id).where(id_in(s, Enrollment.id, many)))) == [rows[0].id]
        journeys = ["bulk_test", "o'brien", "x" * 70]
        assert s.scalar(select(func.count()).where(text_in(s, Enrollment.journey, journeys))) == 6


def test_reserve_inserts_a_row_per_enrollment_once_and_keeps_existing_ones(engine: Engine) -> None:
    step = send(email("welcome/email_welcome"), key="hello")
    journey = Journey(name="bulk_test", description="", version=1, purpose="transactional", audience="new_members",
                      steps=[step])
    with Session(engine) as s:
        made = _enrollments(s, 4)
        plain = [EnrollmentRow(e.id, 1, "member", e.recipient_id, NOW, 0, NOW, {}, EnrollmentStatus.active, None, None)
                 for e in made]
        first = reserve(s, journey, step, plain[:2], NOW)
        second = reserve(s, journey, step, plain, NOW + timedelta(minutes=1))  # two again, two new
        ledger = s.execute(select(Send.enrollment_id, Send.id, Send.status, Send.recipient_id, Send.step_key)).all()
        assert len(ledger) == 4 and {r.status for r in ledger} == {SendStatus.reserved}
        assert {r.enrollment_id: r.recipient_id for r in ledger} == {e.id: e.recipient_id for e in made}
        by_enrollment = {r.enrollment_id: r.id for r in ledger}
        assert {k: v.id for k, v in first.items()} == {e.id: by_enrollment[e.id] for e in made[:2]}
        assert set(second) == {e.id for e in made}
        assert {second[e.id].id for e in made} == set(by_enrollment.values())  # the first two read back, not re-made
