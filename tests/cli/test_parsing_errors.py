"""Every command-line mistake of issue 17, through the installed entry point: one `error:` line, a
usage hint, exit code 2, never a traceback (typer 0.29 bundles its own click; both are caught)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.running import assert_one_error_line, run_cli

MISTAKES = [
    (("simulate", "win_back", "--strat", "2026-10-01"), ("No such option: --strat", "--start")),
    (("simulate", "win_back"), ("Missing option '--start'",)),
    (("simulate", "win_back", "--start", "2026-10-01", "--format", "xml"), ("--format", "'xml'")),
    (("simulat",), ("No such command 'simulat'", "simulate")),
    (("bench", "-n", "0"), ("--members", "greater than or equal to 1")),
    (("audience", "count"), ("Missing argument",)),
    (("report", "--window-days", "many"), ("--window-days", "integer")),
    (("journeys", "--format", "yaml"), ("--format", "'yaml'")),
]


@pytest.mark.slow
@pytest.mark.parametrize(("args", "fragments"), MISTAKES, ids=[" ".join(a) for a, _ in MISTAKES])
def test_a_parsing_mistake_is_one_line_and_exit_2(entry_point: str, tmp_path: Path, args: tuple[str, ...],
                                                  fragments: tuple[str, ...]) -> None:
    result = run_cli(entry_point, *args, cwd=tmp_path)
    assert_one_error_line(result, *fragments)
    hint = [line for line in result.stderr.splitlines() if line.startswith("usage:")]
    assert hint and hint[0].endswith("--help"), result.stderr
    assert not (tmp_path / "loyalflow.db").exists()


@pytest.mark.slow
def test_version(entry_point: str, tmp_path: Path) -> None:
    from importlib.metadata import version

    result = run_cli(entry_point, "--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"loyalflow {version('loyalflow')}"


@pytest.mark.slow
@pytest.mark.parametrize("args", [("--help",), ("simulate", "--help"), ("report", "--help"), ("demo", "--help")])
def test_help_is_clean(entry_point: str, tmp_path: Path, args: tuple[str, ...]) -> None:
    result = run_cli(entry_point, *args, cwd=tmp_path, columns=100)
    assert result.returncode == 0, result.stderr
    assert "Usage: loyalflow" in result.stdout
    assert "<bool>" not in result.stdout and "Traceback" not in result.stderr


@pytest.mark.slow
def test_no_arguments_shows_the_help_and_succeeds(entry_point: str, tmp_path: Path) -> None:
    for args in ((), ("audience",)):
        result = run_cli(entry_point, *args, cwd=tmp_path)
        assert result.returncode == 0 and "Usage: loyalflow" in result.stdout, result.stderr
