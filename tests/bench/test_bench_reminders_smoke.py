"""bench_reminders: its rolling-window count, and a small run that prints both rows."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from tests.bench.bench_reminders import figures, most_in_30_days

T = datetime(2026, 12, 1, 10, tzinfo=timezone.utc)


def test_most_in_30_days_is_a_rolling_window() -> None:
    days = [0, 5, 29, 30, 31, 60]  # 0..29 holds 3; 5..34 holds 4 (5, 29, 30, 31)
    assert most_in_30_days([T + timedelta(days=d) for d in days]) == 4
    assert figures({1: [T], 2: [T + timedelta(days=d) for d in days]})["max"] == 4


@pytest.mark.slow
def test_a_small_run_prints_before_and_after() -> None:
    out = subprocess.run([sys.executable, "-m", "tests.bench.bench_reminders", "--members", "200", "--days", "35"],
                         capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(line.startswith("before (one per batch)") for line in lines)
    after = next(line for line in lines if line.startswith("after (7-day digest, cap 4)"))
    assert int(after.split()[-4]) <= 4  # max per 30 days never above the cap
