"""The empty-pass benchmark runs at a small size and reports its figures (timings are not asserted)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.bench.bench_pass import measure


@pytest.mark.slow
def test_empty_pass_bench_reports_its_figures(sqlite_engine: Engine) -> None:
    figures = measure(sqlite_engine, 3_000, 5)
    assert figures["enrollments"] == 3_000
    assert figures["statements_per_empty_pass"] <= 2  # the due count (+ the newest event id)
    assert any("enrollments" in kind for kind in figures["statement_kinds"])
    assert "ix_enrollments_due" in figures["plan"]
    assert figures["empty_pass_ms_median"] > 0 and figures["next_due_ms_median"] > 0
