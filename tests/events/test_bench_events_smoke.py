"""The events benchmark runs end to end at a small size and reports every figure (speed is not
asserted: only that every event reached the outbox, once, and that the figures are there)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_events_bench_reports_latency_and_throughput(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALFLOW_")}
    env |= {"PREFECT_HOME": str(tmp_path / "prefect"), "DO_NOT_TRACK": "1"}
    subprocess.run([sys.executable, "-m", "tests.bench.bench_events", "--events", "4", "--gap", "0.2",
                    "--throughput", "1000", "--batch", "250", "--clients", "2", "--json", str(out)],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    result = json.loads(out.read_text())
    layouts = {r["layout"]: r for r in result["latency"]}
    assert set(layouts) == {"cli", "one-process", "two-processes"}
    for figures in layouts.values():
        assert figures["delivered"] == 4 and figures["missing"] == 0
        assert 0 < figures["p50_s"] <= figures["p95_s"] <= figures["max_s"]
    assert result["throughput"]["events"] == 1000 and result["throughput"]["events_per_s"] > 0
