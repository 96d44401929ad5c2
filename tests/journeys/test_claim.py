"""The claim (journeys/engine.py): a chunk is this journey's due enrollments, oldest due first, read off
ix_enrollments_journey_due as a range that stops at the chunk's size (no sort of every due row)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from journeys.engine import claim
from journeys.models import Enrollment, EnrollmentStatus

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def _add(session: Session, journey: str, due: list[datetime | None], status: EnrollmentStatus = EnrollmentStatus.active,
         first_id: int = 1) -> list[int]:
    rows = [Enrollment(journey=journey, journey_version=1, recipient_kind="member", recipient_id=first_id + i,
                       occurrence_key="once", enrolled_at=NOW - timedelta(days=9), status=status, step_index=0,
                       due_at=d, context={}, updated_at=NOW) for i, d in enumerate(due)]
    session.add_all(rows)
    session.commit()
    return [r.id for r in rows]


def test_a_claim_takes_the_oldest_due_first_and_nothing_else(engine: Engine) -> None:
    with Session(engine) as s:
        # ids in one order, due instants in another: the claim follows the instants, then the ids
        dues = [NOW - timedelta(hours=h) for h in (1, 5, 3, 5, 2)] + [NOW + timedelta(minutes=1), None]
        ids = _add(s, "claimed", dues)
        _add(s, "claimed", [NOW - timedelta(days=3)], EnrollmentStatus.completed, first_id=100)
        _add(s, "other", [NOW - timedelta(days=3)], first_id=200)
        first = claim(s, "claimed", NOW, 3, "w1")
        assert first == sorted([ids[1], ids[3], ids[2]])  # due 5 h ago (two, by id), then 3 h ago
        second = claim(s, "claimed", NOW, 3, "w2")  # what w1 holds is not taken again
        assert second == sorted([ids[4], ids[0]])
        assert claim(s, "claimed", NOW, 3, "w3") == []  # the future, the undated, other statuses and journeys stay
        assert claim(s, "claimed", NOW, 10, "w1") == first  # a retried worker takes back its own leases


def test_the_claim_reads_a_range_of_its_index_without_sorting(sqlite_engine: Engine) -> None:
    """On a new SQLite database (no statistics) the claim's own statement takes its candidates off
    ix_enrollments_journey_due in order: before it, each claim sorted every due row of every journey
    (35 ms a chunk at 66,000 due)."""
    seen: list[tuple[str, object]] = []

    def capture(conn: object, cursor: object, statement: str, parameters: object, context: object, many: bool) -> None:
        if statement.lstrip().upper().startswith("UPDATE ENROLLMENTS"):
            seen.append((statement, parameters))

    with Session(sqlite_engine) as s:
        _add(s, "claimed", [NOW - timedelta(minutes=i % 50) for i in range(200)])
        event.listen(sqlite_engine, "before_cursor_execute", capture)
        try:
            assert len(claim(s, "claimed", NOW, 100, "w1")) == 100
        finally:
            event.remove(sqlite_engine, "before_cursor_execute", capture)
        statement, parameters = seen[0]
        plan = " / ".join(str(r[-1]) for r in s.connection().exec_driver_sql(
            "EXPLAIN QUERY PLAN " + statement, parameters))  # type: ignore[arg-type]
    assert "ix_enrollments_journey_due" in plan and "TEMP B-TREE" not in plan, plan
