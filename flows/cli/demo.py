"""`loyalflow demo`: the main job on the embedded default (SQLite, outbox, Prefect's local API)."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from audiences.errors import InvalidParameter
from flows.cli.app import console
from flows.cli.options import parse_instant
from flows.cli.output import plain, print_table
from templates.vocabulary import CHANNELS


def demo(
    members: int = typer.Option(10_000, "--members", "-n", help="How many synthetic members."),
    days: int = typer.Option(60, "--days", help="How many past days to replay through the journeys."),
    seed: int = typer.Option(7, "--seed", help="Seed of the synthetic data (same seed, same run)."),
    folder: Path = typer.Option(Path("loyalflow-demo"), "--dir", help="Folder for the database, outbox and report."),
    today: str = typer.Option(None, "--today", help="The demo's 'today' (YYYY-MM-DD; default: today, UTC)."),
) -> None:
    """Create demo data, run every journey over the last 60 days through Prefect, write the outbox and report."""
    from flows.demo import run_demo, today_utc

    if members < 1 or days < 1:
        raise InvalidParameter("--members and --days must be at least 1")
    as_of = parse_instant(today, "--today") if today else today_utc()
    with demo_progress() as progress:
        result = run_demo(folder, members, days, seed, as_of, progress=progress)
    table = Table("journey", "enrolled", "held out", *CHANNELS, "skipped", "failed", "exited",
                  title=f"{result.members:,} members, last {result.days} days replayed through Prefect")
    for name, t in sorted(result.per_journey.items()):
        table.add_row(name, f"{t['enrolled']:,}", f"{t['held_out']:,}", *(f"{t['sent'].get(c, 0):,}" for c in CHANNELS),
                      f"{t['skipped']:,}", f"{t['failed']:,}", f"{t['exited']:,}")
    print_table(table)
    s = result.seconds
    plain(f"done in {sum(s.values()):.0f} s (data {s['data']:.0f} s, Prefect API start {s.get('api', 0):.0f} s, "
          f"journeys {s['journeys']:.0f} s, report {s['report']:.0f} s). Look at:")
    plain(f"  report   {result.report_path}  (open it in a browser)")
    plain(f"  outbox   {result.outbox}/  (.eml files open in any mail client; sms.jsonl, push.jsonl)")
    plain(f"  explore  source {result.env_file}    # or: export LOYALFLOW_DATABASE_URL={result.database_url}")
    plain("           loyalflow audience count lapsed; loyalflow report; loyalflow serve  # demo links work")


DAY = re.compile(r"day (\d+)/(\d+)")


@contextmanager
def demo_progress() -> Iterator[Callable[[str], None]]:
    """On a terminal: a bar of simulated days under the current phase. Otherwise (a pipe, a file,
    CI): one plain line per phase and per day, with the time since the start, so a log tells the story."""
    started = time.perf_counter()
    if not console.is_terminal:
        def line(message: str) -> None:
            plain(f"[{time.perf_counter() - started:6.1f} s] {message}", console)
            sys.stdout.flush()
        yield line
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        phase = bar.add_task("starting", total=None)
        day_task = None

        def update(message: str) -> None:
            nonlocal day_task
            found = DAY.match(message)
            if found is None:
                bar.update(phase, description=message)
                return
            if day_task is None:
                day_task = bar.add_task("simulated days", total=int(found.group(2)))
            bar.update(day_task, completed=int(found.group(1)), description=f"simulated {message}")
        yield update


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
