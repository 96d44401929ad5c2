"""`loyalflow bench` from anywhere (the installed entry point, a working directory outside the
checkout): it finds the benchmark in the source tree, is small by default and ends without tracebacks."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from tests.cli.running import run_cli


def test_small_by_default() -> None:
    from flows.cli.bench_cmd import bench

    assert inspect.signature(bench).parameters["members"].default.default == 10_000


@pytest.mark.slow
def test_bench_runs_from_outside_the_checkout_and_prints_one_json_object(entry_point: str, tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    result = run_cli(entry_point, "bench", "-n", "150", "--json", "--out", str(out), "--concurrency", "8",
                     cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "No module named" not in result.stderr
    assert "Traceback" not in result.stderr and "ERROR" not in result.stderr, result.stderr[-3000:]
    figures = json.loads(result.stdout)  # one JSON object, nothing else on stdout
    assert figures == json.loads(out.read_text(encoding="utf-8"))
    assert figures["members"] == 150 and figures["processes"] == 1
    assert figures["duplicates"] == 0 and figures["competent_duplicates"] == 0
    assert figures["messages"] == figures["competent_messages"] == figures["fake_accepted"] > 0
    assert set(figures["peak_rss_mib"]) == {"tick"}
    assert "competent script" in result.stderr  # the human table
