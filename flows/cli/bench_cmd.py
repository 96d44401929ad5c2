"""`loyalflow bench`: loyalflow's whole tick against the competent hand-written sender, from the CLI.

The benchmarks live with the tests (they start fake providers from tests/), so this command runs
them as modules in a child process instead of importing them: flows/ never imports tests/. The
child finds `tests` in the source tree this package was installed from (an editable install, or a
run from the checkout), whatever the working directory.

It runs tests/bench/bench_versus.py (paired runs against the competent script and the lean fake;
`--scaling` redraws the chart and RESULTS.md's section with both); `--context` runs
tests/bench/bench_pipeline.py instead: the naive way and a Prefect task per recipient.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import typer

from audiences.errors import LoyalflowError

MODULE = "tests.bench.bench_versus"
PIPELINE = "tests.bench.bench_pipeline"
DEFAULT_MEMBERS = 10_000


def source_tree() -> Path | None:
    """The checkout holding tests/bench: the one flows/ was imported from, else the working directory."""
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        if (root / "tests" / "bench" / "bench_versus.py").is_file():
            return root
    if importlib.util.find_spec("tests.bench") is not None:
        return Path.cwd()
    return None


class BenchmarkNotAvailable(LoyalflowError):
    """The benchmark ships with the source tree's tests, which this installation does not have."""


def bench(
    members: int = typer.Option(DEFAULT_MEMBERS, "--members", "-n", min=1,
                                help="Members of demo data (cached under the checkout's bench-results/)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout (the table goes to stderr)."),
    out: Path = typer.Option(None, "--out", help="Also write every figure to this JSON file."),
    processes: int = typer.Option(1, "--processes", min=1, help="Advance processes sharing the tick."),
    pairs: int = typer.Option(1, "--pairs", min=1, help="loyalflow/competent pairs (A B A B); medians reported."),
    concurrency: int = typer.Option(128, "--concurrency", min=1, help="loyalflow's adapter threads per provider."),
    warm: bool = typer.Option(False, "--warm", help="A tick the day before first (not measured): the daily tick "
                              "production runs, not the first one after a journey is deployed."),
    chunk_size: int = typer.Option(None, "--chunk-size", min=1,
                                   help="Due enrollments an advance process claims at a time (default 5,000; 1,000 "
                                        "with several processes)."),
    scaling: str = typer.Option(None, "--scaling", help="Comma-separated sizes: the scaling table, PNG and RESULTS.md."),
    context: bool = typer.Option(False, "--context", help="The naive way and a Prefect task per recipient instead."),
    postgres: bool = typer.Option(False, "--postgres", help="loyalflow's tick also on a throwaway PostgreSQL (with "
                                  "--context: the pipeline's figures there too)."),
) -> None:
    """One tick of points-expiring and win-back vs a competent hand-written sender, fakes answering in 20 ms."""
    root = source_tree()
    if root is None:
        raise BenchmarkNotAvailable(f"{MODULE} not found: the benchmark ships with the source tree; install with "
                                    "`pip install -e .` from a checkout, or run `loyalflow bench` inside one")
    if context:
        args = [sys.executable, "-m", PIPELINE, "--members", str(members), "--concurrency", str(concurrency),
                "--prefect-members", str(min(members, 100_000))]
        if out is not None:
            args += ["--json", str(out.resolve())]
        if postgres:
            args.append("--postgres")
        if warm:
            args.append("--warm")
    else:
        args = [sys.executable, "-m", MODULE, "--members", str(members), "--concurrency", str(concurrency),
                "--processes", str(processes), "--pairs", str(pairs)]
        if chunk_size:
            args += ["--chunk-size", str(chunk_size)]
        if postgres:
            args.append("--postgres")
        if warm:
            args.append("--warm")
        if as_json:
            args.append("--json")
        if out is not None:
            args += ["--out", str(out.resolve())]
        if scaling:
            args += ["--scaling", scaling]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
    # from the checkout: its bench-results/ cache and tests/bench/RESULTS.md are where the README says
    raise SystemExit(subprocess.run(args, check=False, env=env, cwd=root).returncode)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
