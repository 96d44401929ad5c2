"""`loyalflow demo`: the main job on the embedded default (SQLite, outbox, Prefect's local API)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from audiences.errors import InvalidParameter
from flows.cli.app import console, err_console
from flows.cli.options import parse_instant


def demo(
    members: int = typer.Option(10_000, "--members", "-n", help="How many synthetic members."),
    days: int = typer.Option(60, "--days", help="How many past days to replay through the journeys."),
    seed: int = typer.Option(7, "--seed", help="Seed of the synthetic data (same seed, same run)."),
    folder: Path = typer.Option(Path("loyalflow-demo"), "--dir", help="Folder for the database, outbox and report."),
    today: str = typer.Option(None, "--today", help="The demo's 'today' (YYYY-MM-DD; default: today, UTC)."),
) -> None:
    """Create demo data, run all five journeys over the last 60 days through Prefect, write the outbox and report."""
    from flows.demo import run_demo, today_utc

    if members < 1 or days < 1:
        raise InvalidParameter("--members and --days must be at least 1")
    as_of = parse_instant(today, "--today") if today else today_utc()
    with err_console.status("starting") as status:
        result = run_demo(folder, members, days, seed, as_of, progress=lambda msg: status.update(msg))
    table = Table("journey", "enrolled", "held out", "email", "sms", "push", "skipped", "failed", "exited",
                  title=f"{result.members:,} members, last {result.days} days replayed through Prefect")
    for name, t in sorted(result.per_journey.items()):
        table.add_row(name, f"{t['enrolled']:,}", f"{t['held_out']:,}", *(f"{t['sent'].get(c, 0):,}" for c in
                                                                            ("email", "sms", "push")),
                      f"{t['skipped']:,}", f"{t['failed']:,}", f"{t['exited']:,}")
    console.print(table)
    total = sum(result.seconds.values())
    console.print(f"done in {total:.0f} s (data {result.seconds['data']:.0f} s, journeys {result.seconds['journeys']:.0f} s, "
                  f"report {result.seconds['report']:.0f} s). Look at:")
    console.print(f"  report   {result.report_path}  (open it in a browser)")
    console.print(f"  outbox   {result.outbox}/  (.eml files open in any mail client; sms.jsonl, push.jsonl)")
    console.print(f"  explore  export LOYALFLOW_DATABASE_URL={result.database_url}")
    console.print("           loyalflow audience count lapsed; loyalflow report; loyalflow simulate win_back --start 2026-01-01")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
