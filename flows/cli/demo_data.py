"""`loyalflow demo-data`: fill an empty database with deterministic synthetic loyalty data."""

from __future__ import annotations

from datetime import datetime, timezone

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from audiences.db import make_engine, safe_url
from audiences.demo import check_request, generate
from flows import migrate
from flows.cli.app import console
from flows.cli.options import parse_instant
from flows.cli.output import print_table


def demo_data(
    members: int = typer.Option(..., "--members", "-n", help="How many members to generate (at least 1)."),
    seed: int = typer.Option(0, "--seed", "-s", help="Random seed: the same seed gives the same data."),
    as_of: str = typer.Option(None, "--as-of", help="The 'today' of the data, YYYY-MM-DD (default: today, 00:00 UTC)."),
    reset: bool = typer.Option(False, "--reset", help="Delete the rows of the loyalty tables first."),
) -> None:
    """Generate members, purchases, points, tiers, staff and program updates into the database."""
    when = parse_instant(as_of, "--as-of") if as_of else datetime.now(timezone.utc).replace(
        hour=0, minute=0, second=0, microsecond=0)
    check_request(members, seed, when)
    engine = make_engine(create=True)
    migrate.upgrade(engine)
    with Progress(TextColumn("members"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task("members", total=members)
        summary = generate(engine, members, seed, when, lambda done, total: bar.update(task, completed=done),
                           reset=reset)
    table = Table("table", "rows", title=f"demo data as of {summary.as_of.date().isoformat()} (seed {seed})")
    for name, count in sorted(summary.counts.items()):
        table.add_row(name, f"{count:,}")
    table.add_row("[bold]total[/]", f"[bold]{summary.total_rows:,}[/]")
    print_table(table)
    rate = summary.members / summary.elapsed_seconds if summary.elapsed_seconds else 0.0
    console.print(f"wrote {summary.members:,} members into {safe_url(engine.url)} in "
                  f"{summary.elapsed_seconds:.1f} s ({rate:,.0f} members/s)")


def register(app: typer.Typer) -> None:
    app.command("demo-data")(demo_data)
