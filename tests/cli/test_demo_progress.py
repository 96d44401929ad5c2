"""The demo's progress: a bar of simulated days on a terminal, one plain line per phase and day elsewhere."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

import flows.cli.demo as demo_cli
from flows import runtime

MESSAGES = ["generating 10 members", "starting Prefect's local API", "replaying 3 days of all journeys through Prefect",
            "day 1/3 (2026-11-20) replayed", "day 2/3 (2026-11-21) replayed", "day 3/3 (2026-11-22) replayed",
            "writing the report"]


def _drive(monkeypatch: pytest.MonkeyPatch, console: Console) -> None:
    monkeypatch.setattr(demo_cli, "console", console)
    with demo_cli.demo_progress() as progress, runtime.listening(progress):
        for message in MESSAGES:
            runtime.progress(message)  # as simulate_program and run_demo report them


def test_not_a_terminal_gets_one_plain_line_per_phase_and_day(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    _drive(monkeypatch, Console(file=out, width=80))
    lines = out.getvalue().splitlines()
    assert len(lines) == len(MESSAGES)
    for line, message in zip(lines, MESSAGES):
        assert line.endswith(message) and line.startswith("[")
    assert "\x1b" not in out.getvalue()


def test_a_terminal_gets_a_bar_of_simulated_days(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    _drive(monkeypatch, Console(file=out, width=100, force_terminal=True, color_system=None))
    text = out.getvalue()
    assert "simulated day 3/3" in text and "3/3" in text
    assert "day 1/3 (2026-11-20) replayed\n" not in text  # not the plain lines
