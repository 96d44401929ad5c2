"""`loyalflow journeys`, `loyalflow check` and `loyalflow simulate`."""

from __future__ import annotations

import csv
import io
import json
from enum import Enum

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from audiences.db import make_engine
from flows.cli.app import console, err_console
from flows.cli.options import parse_instant
from flows.cli.output import FORMAT as LIST_FORMAT
from flows.cli.output import Format as ListFormat
from flows.cli.output import print_json, print_table
from flows.migrate import require_current
from templates.vocabulary import CHANNELS


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


def list_journeys(fmt: ListFormat = LIST_FORMAT) -> None:
    """Every journey with its audience, schedule and steps."""
    from journeys.program import compile_steps, sends
    from journeys.registry import journeys

    rows = []
    for j in journeys().values():
        rows.append({"name": j.name, "version": j.version, "purpose": j.purpose, "audience": j.audience,
                     "schedule": j.schedule, "trigger": j.trigger.type if j.trigger else None, "priority": j.priority, "holdout_percent": j.holdout_percent,
                     "rollout_percent": j.rollout_percent,
                     "sends": [[m.channel for m in s.messages] for s in sends(compile_steps(j.steps))]})
    if fmt is ListFormat.json:
        print_json(rows)
        return
    table = Table("name", "v", "purpose", "audience", "schedule (UTC)", "holdout", "rollout", "sends")
    for r in rows:
        table.add_row(r["name"], str(r["version"]), r["purpose"], r["audience"] or f"event {r['trigger']}", r["schedule"],
                      f"{r['holdout_percent']:g}%", f"{r['rollout_percent']:g}%",
                      ", ".join("/".join(chain) for chain in r["sends"]))
    print_table(table)


def check(fmt: ListFormat = LIST_FORMAT) -> None:
    """Load every journey and render every template in every locale; report every problem with file:line."""
    from journeys.check import check_journeys, database_checks
    from journeys.contract import context_factory
    from journeys.registry import load_all
    from templates import TemplateLibrary, check_templates

    library = TemplateLibrary.load(eager=False)
    loaded = load_all()  # templates render with exactly what their journey's contract declares
    found = check_templates(library, context_for=context_factory(loaded.journeys.values()))
    found += check_journeys(library=library) + database_checks(loaded.journeys)
    problems = [p for p in found if not p.warning]
    warnings = [p for p in found if p.warning]  # timing the runtime may not honour: shown, not fatal
    if fmt is ListFormat.json:
        print_json({"ok": not problems, "problems": [str(p) for p in problems],
                    "warnings": [str(p) for p in warnings]})
        if problems:
            raise SystemExit(1)
        return
    for problem in problems:
        err_console.print(f"[red]✗[/] {problem}", highlight=False, markup=True)
    for warning in warnings:
        err_console.print(f"[yellow]![/] {warning}", highlight=False, markup=True)
    if problems:
        err_console.print(f"{len(problems)} problem(s)" + (f", {len(warnings)} warning(s)" if warnings else ""))
        raise SystemExit(1)
    console.print("[green]✓[/] every journey and template is fine"
                  + (f" ({len(warnings)} warning(s) above)" if warnings else ""))


def simulate(
    journey: str = typer.Argument(..., help="Journey name."),
    start: str = typer.Option(..., "--start", help="First simulated day (ISO date, UTC)."),
    days: int = typer.Option(30, "--days", min=1, max=3650, help="How many days to simulate."),
    fmt: Format = typer.Option(Format.table, "--format", help="table, json or csv."),
    events: str = typer.Option(None, "--events", help="JSON Lines of events fed at their occurred_at "
                                                      "(for an event-triggered journey)."),
) -> None:
    """Time travel: tick the journey on a simulated clock over the current data; nothing is sent or kept."""
    from journeys.registry import get_journey
    from journeys.services import services_for
    from journeys.simulate import simulate as run
    from journeys.simulate import tick_times

    definition = get_journey(journey)
    first = parse_instant(start, "--start")
    engine = require_current(make_engine())
    if events is not None or definition.schedule is None:  # entered by events: fed from the file
        from audiences.errors import InvalidParameter
        from journeys.event_simulation import simulate_events

        if events is None:
            raise InvalidParameter(f"journey {journey!r} is entered by events: give --events FILE.jsonl")
        result = simulate_events(engine, definition, events, first, days,
                                 lambda adapter: services_for(adapter))
    else:
        ticks = len(tick_times(definition.schedule, first, days))
        with Progress(TextColumn("simulating {task.description}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total} ticks"), TimeRemainingColumn(), console=err_console,
                      transient=True, disable=fmt is not Format.table) as bar:
            task = bar.add_task(journey, total=ticks)
            result = run(engine, definition, first, days,
                         lambda adapter: services_for(adapter),
                         on_tick=lambda _: bar.advance(task))
    rows = [d.row() for d in result]
    if fmt is Format.json:
        typer.echo(json.dumps({"journey": journey, "start": first.date().isoformat(), "days": rows}, indent=2))
        return
    channels = list(CHANNELS)
    reasons = sorted({r for row in rows for r in row["skipped"]})
    failures = sorted({r for row in rows for r in row["failed"]})
    exits = sorted({r for row in rows for r in row["exited"]})
    arms = list(dict.fromkeys(v for row in rows for v in row.get("variants", {})))  # the A/B split, if any
    header = (["date", "enrolled", "held_out"] + [f"sent_{c}" for c in channels] + [f"variant_{v}" for v in arms]
              + [f"skipped_{r}" for r in reasons]
              + [f"failed_{r}" for r in failures] + [f"exited_{r}" for r in exits] + ["completed"])
    flat = [[row["date"], row["enrolled"], row["held_out"]] + [row["sent"].get(c, 0) for c in channels]
            + [row["variants"].get(v, 0) for v in arms]
            + [row["skipped"].get(r, 0) for r in reasons] + [row["failed"].get(r, 0) for r in failures]
            + [row["exited"].get(r, 0) for r in exits] + [row["completed"]] for row in rows]
    if fmt is Format.csv:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(flat)
        typer.echo(out.getvalue(), nl=False)
        return
    table = Table(*header, title=f"simulation of {journey} from {first.date()} for {days} days (nothing sent)")
    for values in flat:
        table.add_row(*(str(v) for v in values))
    totals = [sum(values[i] for values in flat) for i in range(1, len(header))]
    table.add_row("total", *(str(t) for t in totals), style="bold")
    print_table(table)


def register(app: typer.Typer) -> None:
    app.command("journeys")(list_journeys)
    app.command("check")(check)
    app.command("simulate")(simulate)
    # `new journey` and `migrate-version`: authoring beside check
    from flows.cli.new_cmd import register as register_authoring

    register_authoring(app)
