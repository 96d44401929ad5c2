"""The pipeline benchmark runs end to end at a few hundred members and reports every figure.

Timings are not asserted (speed is only measured by the benchmarks); what is asserted is that the
run really delivered through the fakes, nothing twice, and that no figure is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FIGURES = ("enrolled", "enroll_s", "advanced", "advance_s", "advance_per_s", "render", "delivery", "messages",
           "total_s", "messages_per_s", "peak_rss_mib", "journeys")


def test_pipeline_bench_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "DO_NOT_TRACK": "1",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env = {k: v for k, v in env.items() if not k.startswith("LOYALFLOW_")}
    subprocess.run([sys.executable, "-m", "tests.bench.bench_pipeline", "--members", "300", "--json", str(out),
                    "--sample", "10", "--prefect-members", "300", "--concurrency", "8"],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=240)
    result = json.loads(out.read_text())

    figures = result["sqlite"]
    assert set(FIGURES) <= set(figures)
    assert set(figures["journeys"]) == {"points_expiring", "win_back"}
    assert figures["messages"] > 0 and figures["messages_per_s"] > 0
    assert figures["render"]["count"] >= figures["messages"] > 0
    assert figures["delivery"]["count"] >= figures["messages"]
    assert figures["peak_rss_mib"] > 0
    # every message counted as sent reached a fake, once
    fakes = result["fakes"]
    assert fakes["sendgrid"]["accepted"] + fakes["twilio"]["accepted"] == figures["messages"]
    assert fakes["sendgrid"]["duplicates"] == fakes["twilio"]["duplicates"] == 0
    for way in ("naive", "task_per_recipient"):
        assert result[way]["sample"] > 0 and result[way]["per_s"] > 0 and result[way]["speedup"] > 0
    prefect = result["prefect"]
    assert prefect["messages_flow"] == prefect["messages_plain"] == figures["messages"]
    assert 0 <= prefect["share"] < 1 and prefect["flow_s"] > 0 and prefect["plain_s"] > 0
