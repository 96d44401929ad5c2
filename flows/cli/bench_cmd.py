"""`loyalflow bench`: the whole-path benchmark (tests/bench/bench_pipeline.py), from the CLI.

The benchmark lives with the tests (it starts fake providers from tests/support), so this command
runs it as a module in a child process instead of importing it: flows/ never imports tests/.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import typer

from audiences.errors import LoyalflowError

MODULE = "tests.bench.bench_pipeline"


class BenchmarkNotAvailable(LoyalflowError):
    """The benchmark ships with the source tree's tests, which this installation does not have."""


def bench(
    members: int = typer.Option(1_000_000, "--members", "-n", help="Members of demo data (cached under bench-results/)."),
    json_file: Path = typer.Option(None, "--json", help="Also write every figure to this JSON file."),
    postgres: bool = typer.Option(False, "--postgres", help="Also on a throwaway PostgreSQL, when installed."),
    scaling: str = typer.Option(None, "--scaling", help="Comma-separated sizes: the scaling table, PNG and RESULTS.md."),
    concurrency: int = typer.Option(128, "--concurrency", help="Adapter threads per provider."),
) -> None:
    """One tick of points-expiring and win-back against fake SendGrid/Twilio (20 ms), vs the naive ways."""
    if members < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--members")
    if importlib.util.find_spec("tests.bench") is None:
        raise BenchmarkNotAvailable(f"{MODULE} not found: run `loyalflow bench` from a loyalflow source checkout")
    args = [sys.executable, "-m", MODULE, "--members", str(members), "--concurrency", str(concurrency)]
    if json_file is not None:
        args += ["--json", str(json_file)]
    if postgres:
        args.append("--postgres")
    if scaling:
        args += ["--scaling", scaling]
    raise SystemExit(subprocess.run(args, check=False).returncode)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
