"""The advance-CPU benchmark runs at a small size and reports its figures (timings are not asserted)."""

from __future__ import annotations

from tests.bench.advance_cpu import main


def test_advance_cpu_bench_reports_its_figures() -> None:
    result = main(["--members", "400", "--runs", "1", "--json"])
    assert result["messages"] > 0 and result["delivered"] == result["messages"]  # every message reached the adapter, once
    assert result["advanced"] >= result["messages"]
    assert result["advance_cpu_us_per_msg"] > 0 and len(result["runs"]) == 1
