"""`loyalflow bench`: the whole-path benchmark (tests/bench/bench_pipeline.py), from the CLI.

The benchmark lives with the tests (it starts fake providers from tests/support), so this command
runs it as a module in a child process instead of importing it: flows/ never imports tests/. The
child finds `tests` in the source tree this package was installed from (an editable install, or a
run from the checkout), whatever the working directory.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import typer

from audiences.errors import LoyalflowError

MODULE = "tests.bench.bench_pipeline"
DEFAULT_MEMBERS = 10_000


def source_tree() -> Path | None:
    """The checkout holding tests/bench: the one flows/ was imported from, else the working directory."""
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        if (root / "tests" / "bench" / "bench_pipeline.py").is_file():
            return root
    if importlib.util.find_spec("tests.bench") is not None:
        return Path.cwd()
    return None


class BenchmarkNotAvailable(LoyalflowError):
    """The benchmark ships with the source tree's tests, which this installation does not have."""


def bench(
    members: int = typer.Option(DEFAULT_MEMBERS, "--members", "-n", min=1,
                                help="Members of demo data (cached under the checkout's bench-results/)."),
    json_file: Path = typer.Option(None, "--json", help="Also write every figure to this JSON file."),
    postgres: bool = typer.Option(False, "--postgres", help="Also on a throwaway PostgreSQL, when installed."),
    scaling: str = typer.Option(None, "--scaling", help="Comma-separated sizes: the scaling table, PNG and RESULTS.md."),
    concurrency: int = typer.Option(128, "--concurrency", min=1, help="Adapter threads per provider."),
) -> None:
    """One tick of points-expiring and win-back against fake SendGrid/Twilio (20 ms), vs the naive ways."""
    root = source_tree()
    if root is None:
        raise BenchmarkNotAvailable(f"{MODULE} not found: the benchmark ships with the source tree; install with "
                                    "`pip install -e .` from a checkout, or run `loyalflow bench` inside one")
    args = [sys.executable, "-m", MODULE, "--members", str(members), "--concurrency", str(concurrency),
            "--prefect-members", str(min(members, 100_000))]
    if json_file is not None:
        args += ["--json", str(json_file.resolve())]
    if postgres:
        args.append("--postgres")
    if scaling:
        args += ["--scaling", scaling]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
    # from the checkout: its bench-results/ cache and tests/bench/RESULTS.md are where the README says
    raise SystemExit(subprocess.run(args, check=False, env=env, cwd=root).returncode)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
