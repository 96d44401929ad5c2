"""The paired benchmark (loyalflow's tick vs the competent script, lean fake) runs at 300 members.

Speed is not asserted (only measured by the benchmarks); what is asserted: one JSON object on stdout
with every figure, both sides sent the same messages, each reached the lean fake once, two advance
processes shared the tick, and a tick worker imports no web stack or Prefect.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEYS = ("end_to_end_msgs_per_s", "competent_msgs_per_s", "ratio", "cpu_us_per_msg", "competent_cpu_us_per_msg",
        "peak_rss_mib", "competent_peak_rss_mib", "duplicates", "processes", "fake_cpu_us_per_request", "members",
        "messages", "competent_messages", "split", "pairs")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALFLOW_")}
    return env | {"PREFECT_HOME": str(tmp_path / "prefect"), "DO_NOT_TRACK": "1"}


@pytest.mark.slow
def test_two_advance_processes_and_the_competent_script_send_the_same_messages_once(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "tests.bench.bench_versus", "--members", "300", "--json",
                           "--processes", "2", "--concurrency", "8"],
                          cwd=ROOT, env=_env(tmp_path), check=True, capture_output=True, text=True, timeout=600)
    result = json.loads(done.stdout)  # stdout is the JSON object alone; the table went to stderr
    assert "loyalflow tick" in done.stderr

    assert set(KEYS) <= set(result)
    assert result["members"] == 300 and result["processes"] == 2
    assert result["messages"] > 0 and result["messages"] == result["competent_messages"]
    assert result["duplicates"] == result["competent_duplicates"] == 0
    # the lean fake counted exactly what each side reported as sent
    assert result["fake_accepted"] == result["messages"]
    assert result["competent_fake_accepted"] == result["competent_messages"]
    assert result["fake_cpu_us_per_request"] > 0
    # enrollment once, then two processes advancing the same tick; every message from one of them
    assert set(result["peak_rss_mib"]) == {"enroll", "advance_1", "advance_2"}
    assert all(v > 0 for v in result["peak_rss_mib"].values())
    assert sum(result["split"].values()) == result["messages"]
    assert result["end_to_end_msgs_per_s"] > 0 and result["competent_msgs_per_s"] > 0 and result["ratio"] > 0
    assert result["cpu_us_per_msg"] > 0 and result["competent_cpu_us_per_msg"] > 0
    # a tick worker carries no web stack and no Prefect
    assert result["worker_imports"] == []


@pytest.mark.slow
@pytest.mark.postgres
def test_the_same_tick_on_postgresql_sends_the_same_messages_once(tmp_path: Path, postgres_server: object) -> None:
    """`--postgres`: loyalflow's tick again on a throwaway PostgreSQL loaded with the same rows; the
    figures sit beside SQLite's (the fixture only makes the test skip, or fail in CI, without a server)."""
    done = subprocess.run([sys.executable, "-m", "tests.bench.bench_versus", "--members", "300", "--json",
                           "--postgres", "--concurrency", "8"],
                          cwd=ROOT, env=_env(tmp_path), check=True, capture_output=True, text=True, timeout=600)
    result = json.loads(done.stdout)
    assert "loyalflow on PostgreSQL" in done.stderr
    pg = result["postgresql"]
    assert pg["messages"] == result["messages"] > 0, "the same tick sends the same messages on both databases"
    assert pg["fake"]["accepted"] == pg["messages"] and pg["fake"]["duplicates"] == 0
    assert pg["journeys"]["tick"]["points_expiring"]["enrolled"] == \
        result["pairs"][0]["loyalflow"]["journeys"]["tick"]["points_expiring"]["enrolled"]
    assert pg["msgs_per_s"] > 0 and pg["cpu_us_per_msg"] > 0 and pg["load_s"] >= 0
    assert result["postgres_vs_sqlite"] == pytest.approx(pg["msgs_per_s"] / result["end_to_end_msgs_per_s"], rel=0.01)
