"""Fresh planner statistics before each chunk on PostgreSQL (journeys/table_stats.py): a table that
grew far past the planner's row count is analyzed once, then left alone; SQLite has nothing to do."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from journeys.table_stats import MIN_ROWS, refresh_stale

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def _planned_rows(session: Session, table: str) -> float:
    return float(session.execute(text("SELECT reltuples FROM pg_class WHERE relname = :t"), {"t": table}).scalar_one())


def _grow_enrollments(session: Session, n: int, start: int = 1) -> None:
    session.execute(text(
        "INSERT INTO enrollments (journey, journey_version, recipient_kind, recipient_id, occurrence_key, enrolled_at, "
        "status, step_index, due_at, context, updated_at) SELECT 'stats', 1, 'member', g, 'once', :t, 'active', 0, :t, "
        "'{}', :t FROM generate_series(CAST(:a AS integer), CAST(:b AS integer)) AS g"), {"t": NOW.replace(tzinfo=None), "a": start, "b": start + n - 1})
    session.commit()


@pytest.mark.postgres
def test_a_table_grown_past_its_statistics_is_analyzed_once(postgres_engine: Engine) -> None:
    with postgres_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE enrollments"))  # the planner now knows it as empty
    with Session(postgres_engine) as s:
        assert _planned_rows(s, "enrollments") <= 0
        _grow_enrollments(s, 5 * MIN_ROWS)
        s.execute(text("SELECT pg_stat_force_next_flush()"))  # this backend's counters at its next commit
        s.commit()
        assert "enrollments" in refresh_stale(s)
        assert _planned_rows(s, "enrollments") == pytest.approx(5 * MIN_ROWS, rel=0.05)
        assert refresh_stale(s) == [], "analyzed once: nothing changed since"
        _grow_enrollments(s, MIN_ROWS // 2, start=5 * MIN_ROWS + 1)  # under the threshold: left to autovacuum
        s.execute(text("SELECT pg_stat_force_next_flush()"))
        s.commit()
        assert refresh_stale(s) == []


def test_sqlite_needs_nothing(sqlite_engine: Engine) -> None:
    with Session(sqlite_engine) as s:
        assert refresh_stale(s) == []
