"""`loyalflow run`, `report`, `deploy`, `serve-flows` and `scheduler`: running loyalflow for real."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from audiences.db import make_engine
from flows.cli.app import console
from flows.cli.options import parse_instant
from flows.migrate import require_current


def run(
    journey: str = typer.Argument(..., help="Journey name."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Enroll and advance on a throwaway copy; send nothing."),
    at: str = typer.Option(None, "--at", help="Tick at this instant instead of now (ISO)."),
    chunk_size: int = typer.Option(20_000, "--chunk-size", min=100, help="Enrollments per task."),
) -> None:
    """One tick of a journey now, as a Prefect flow run (or a dry run that changes nothing)."""
    from flows import runtime
    from journeys.registry import get_journey

    definition = get_journey(journey)
    now = parse_instant(at)
    engine = require_current(make_engine())
    if dry_run:
        from journeys.engine import tick
        from journeys.services import default_services
        from journeys.simulate import DryRunAdapter, sandbox

        adapter = DryRunAdapter()
        with sandbox(engine) as factory:
            stats = tick(factory, definition, now, default_services(adapters={"email": adapter, "sms": adapter,
                                                                              "push": adapter}))
        console.print(f"[bold]dry run[/] of {journey} at {now.isoformat()}: nothing was sent or kept")
        console.print_json(json.dumps(stats.as_dict()))
        return
    runtime.quiet_prefect()
    from flows.journey_flows import journey_tick

    result = journey_tick(journey, now.isoformat(), chunk_size)
    console.print_json(json.dumps(result))


def report(
    journey: str = typer.Argument(None, help="Only this journey (default: all)."),
    since: str = typer.Option(None, "--since", help="Only messages and enrollments since this date (ISO)."),
    html: Path = typer.Option(None, "--html", help="Also write the report with charts to this HTML file."),
    window_days: int = typer.Option(7, "--window-days", min=1, help="Conversion window after a message."),
    at: str = typer.Option(None, "--at", help="Program figures as of this instant (default now)."),
) -> None:
    """Per journey and channel: enrolled, sent, delivered, opened, clicked, skipped, opted out, conversion and lift."""
    from sqlalchemy.orm import Session

    from flows.report import build_report
    from flows.report_html import money, pct, pts, render_html
    from journeys.registry import get_journey

    if journey:
        get_journey(journey)  # a clear error for an unknown name
    engine = require_current(make_engine())
    with Session(engine) as session:
        result = build_report(session, parse_instant(at), journey=journey,
                              since=parse_instant(since, "--since") if since else None, window_days=window_days)
    table = Table("journey", "enrolled", "held out", "messaged", "conversion", "holdout", "lift", title="journeys")
    for r in result.journeys:
        table.add_row(r.journey, f"{r.enrolled:,}", f"{r.held_out:,}", f"{r.treated:,}", pct(r.conversion),
                      pct(r.holdout_conversion), pts(r.lift))
    console.print(table)
    channels = Table("journey", "channel", "sent", "delivered", "opened", "clicked", "opted out", "failed",
                     title="channels")
    for r in result.journeys:
        for c in r.channels:
            channels.add_row(r.journey, c.channel, f"{c.sent:,}", f"{c.delivered:,}", f"{c.opened:,}",
                             f"{c.clicked:,}", f"{c.opted_out:,}", ", ".join(f"{k} {v}" for k, v in c.failed.items()))
    console.print(channels)
    skipped = Table("journey", "skip reason", "count", title="skipped")
    for r in result.journeys:
        for reason, n in sorted(r.skipped.items()):
            skipped.add_row(r.journey, reason, f"{n:,}")
    console.print(skipped)
    p = result.program
    console.print(f"program: {p['active_members']:,} active members, retention {pct(p['retention_rate'])}, "
                  f"redemption rate {pct(p['redemption_rate'])}, average spend {money(p['average_spend_per_member'])}")
    if html:
        html.write_text(render_html(result), encoding="utf-8")
        console.print(f"wrote {html}")




def scheduler() -> None:
    """The embedded scheduler: every journey at its cron, jobs kept in the database, one instance at a time."""
    import signal
    import threading

    from flows import scheduler as embedded
    from journeys.registry import journeys

    engine = require_current(make_engine())
    running = embedded.start(engine, journeys())
    for job in running.get_jobs():
        if job.id.startswith("journey:"):
            console.print(f"{job.name:<18} next run {job.next_run_time:%Y-%m-%d %H:%M %Z}")
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    console.print("scheduler running; Ctrl-C stops it")
    stopped.wait()
    embedded.stop(engine, running)
    console.print("scheduler stopped")


def deployment_specs() -> list[dict]:
    """What every journey's Prefect deployment is: its cron, one run at a time."""
    from journeys.registry import journeys

    return [dict(name=j.name, cron=j.schedule, parameters={"journey": j.name}, concurrency_limit=1,
                 description=j.description, tags=["loyalflow", j.purpose])
            for j in sorted(journeys().values(), key=lambda j: j.name)]


def deploy(work_pool: str = typer.Option("loyalflow", "--work-pool", help="A process work pool (created if missing)."),
           source: Path = typer.Option(Path("."), "--source", help="The project folder workers load flows from.")) -> None:
    """Register a Prefect deployment per journey on a process work pool; start workers with `prefect worker start`."""
    from flows import runtime
    from flows.journey_flows import journey_tick

    runtime.quiet_prefect()
    _ensure_work_pool(work_pool)
    flow = journey_tick.from_source(source=str(source.resolve()), entrypoint="flows/journey_flows.py:journey_tick")
    for kwargs in deployment_specs():
        flow.deploy(work_pool_name=work_pool, build=False, push=False, print_next_steps=False, **kwargs)
        console.print(f"deployed journey-tick/{kwargs['name']} ({kwargs['cron']}) on work pool {work_pool}")
    console.print(f"start a worker: prefect worker start --pool {work_pool}")


def _ensure_work_pool(name: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=name, type="process"))
        except ObjectAlreadyExists:
            pass


def serve_flows() -> None:
    """Serve every journey's deployment from this one process (small installs; needs a Prefect server)."""
    from prefect import serve

    from flows import runtime
    from flows.journey_flows import journey_tick

    runtime.quiet_prefect()
    serve(*(journey_tick.to_deployment(**spec) for spec in deployment_specs()), print_starting_message=True)


def register_running(app: typer.Typer) -> None:
    app.command("scheduler")(scheduler)
    app.command("deploy")(deploy)
    app.command("serve-flows")(serve_flows)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("report")(report)
    register_running(app)
