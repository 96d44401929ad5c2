"""`loyalflow run`, `report`, `deploy`, `serve-flows` and `scheduler`: running loyalflow for real."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer
from rich.table import Table

from audiences.db import make_engine
from flows.cli.app import console
from flows.cli.options import parse_instant
from flows.cli.output import FORMAT, Format, plain, print_json, print_table, timestamp
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
        from journeys.services import services_for
        from journeys.simulate import DryRunAdapter, sandbox

        adapter = DryRunAdapter()
        with sandbox(engine) as factory:
            stats = tick(factory, definition, now, services_for(adapter))
        console.print(f"[bold]dry run[/] of {journey} at {now.isoformat()}: nothing was sent or kept")
        console.print_json(json.dumps(stats.as_dict()))
        return
    runtime.quiet_prefect()
    from flows import prefect_server
    from flows.journey_flows import journey_tick

    try:
        state = journey_tick(journey, now.isoformat(), chunk_size, return_state=True)
    except RuntimeError as exc:
        if prefect_server.is_ephemeral_timeout(exc):
            raise prefect_server.ephemeral_timeout_error() from None
        raise
    run_id = state.state_details.flow_run_id
    name = _flow_run_name(run_id)
    link = prefect_server.ui_url(run_id)
    console.print(f"flow run {name}" + (f": {link}" if link else " (Prefect's local API; set PREFECT_API_URL "
                                                                    "to keep runs in a server's UI)"),
                  highlight=False, soft_wrap=True)
    console.print_json(json.dumps(state.result()))


def _flow_run_name(run_id: object) -> str:
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            return str(client.read_flow_run(run_id).name)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - the temporary API may already be gone; the id still says which run
        return str(run_id)


def report(
    journey: str = typer.Argument(None, help="Only this journey (default: all)."),
    since: str = typer.Option(None, "--since", help="Only messages and enrollments since this date (ISO)."),
    html: Path = typer.Option(None, "--html", help="Also write the report with charts to this HTML file."),
    csv_dir: Path = typer.Option(None, "--csv", help="Also write every table as DIR/<table>.csv (formula-safe)."),
    window_days: int = typer.Option(7, "--window-days", min=1, max=3650, help="Conversion window after a message."),
    at: str = typer.Option(None, "--at", help="Program figures as of this instant (default now)."),
    fmt: Format = FORMAT,
) -> None:
    """Per journey and channel: enrolled, sent, delivered, opened, clicked, skipped, opted out, conversion and lift."""
    from dataclasses import asdict

    from sqlalchemy.orm import Session

    from flows.report import build_report, reason_in_words
    from flows.report_html import money, pct, pts, render_html
    from journeys.registry import get_journey

    if journey:
        get_journey(journey)  # a clear error for an unknown name
    engine = require_current(make_engine())
    with Session(engine) as session:
        result = build_report(session, parse_instant(at), journey=journey,
                              since=parse_instant(since, "--since") if since else None, window_days=window_days)
    if html:
        html.write_text(render_html(result), encoding="utf-8")
    if csv_dir:
        from flows.report_csv import report_tables, write_csv

        written = write_csv(report_tables(result), csv_dir)
    if fmt is Format.json:
        journeys = [asdict(r) | {"conversion": r.conversion, "holdout_conversion": r.holdout_conversion,
                                 "lift": r.lift} for r in result.journeys]
        print_json({"as_of": timestamp(result.generated_for), "since": result.since and timestamp(result.since),
                    "window_days": result.window_days, "program": result.program, "journeys": journeys,
                    "sent_per_day": [{"date": d, "channel": c, "sent": n} for d, c, n in result.per_day]})
        return
    table = Table("journey", "enrolled", "held out", "messaged", "conversion", "holdout", "lift", title="journeys")
    for r in result.journeys:
        table.add_row(r.journey, f"{r.enrolled:,}", f"{r.held_out:,}", f"{r.treated:,}", pct(r.conversion),
                      pct(r.holdout_conversion), pts(r.lift))
    print_table(table)
    channels = Table("journey", "channel", "sent", "delivered", "opened", "clicked", "opted out", "failed",
                     title="channels (opted out: members, at the first message they opted out from)")
    for r in result.journeys:
        for c in r.channels:
            channels.add_row(r.journey, c.channel, f"{c.sent:,}", f"{c.delivered:,}", f"{c.opened:,}",
                             f"{c.clicked:,}", f"{c.opted_out:,}",
                             "; ".join(f"{reason_in_words(k)} {v:,}" for k, v in c.failed.items()))
    print_table(channels)
    skipped = Table("journey", "skip reason", "code", "count", title="skipped")
    for r in result.journeys:
        for reason, n in sorted(r.skipped.items()):
            skipped.add_row(r.journey, reason_in_words(reason), reason, f"{n:,}")
    print_table(skipped)
    p = result.program
    spend = ", ".join(f"{money(x['average'], x['currency'])} ({x['members']:,} buyers in {x['currency']})"
                      for x in p["spend_by_currency"][:3]) or "–"
    plain(f"program as of {timestamp(result.generated_for)}: {p['active_members']:,} active members, "
          f"retention {pct(p['retention_rate'])} (90 days), redemption rate {pct(p['redemption_rate'])} (12 months), "
          f"average spend per buying member (12 months) {spend}, "
          f"{p['members_opted_out']:,} members opted out from a message, "
          f"{p['consent_withdrawn']:,} withdrew a consent (any source)")
    if html:
        plain(f"wrote {html}")
    if csv_dir:
        plain(f"wrote {len(written)} CSV files to {csv_dir}")




def scheduler() -> None:
    """The embedded scheduler: a pass every minute, every journey's entry at its cron, events at once."""
    import signal
    import threading

    from flows import scheduler as embedded
    from journeys.registry import journeys

    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())

    def waiting(reason: str, delay: float) -> None:
        console.print(f"database unreachable ({reason}); retrying in {delay:g}s", highlight=False)

    logging.getLogger("loyalflow.scheduler").setLevel(logging.INFO)  # one line per non-empty pass
    started = embedded.start_when_reachable(lambda: require_current(make_engine()), journeys(), stopped,
                                            on_wait=waiting)
    if started is None:
        console.print("scheduler stopped")
        return
    engine, running = started
    for job in sorted(running.get_jobs(), key=lambda j: j.id):
        if job.id.startswith("journey:"):
            console.print(f"{job.name:<18} enrolls next at {job.next_run_time:%Y-%m-%d %H:%M %Z}")
    console.print("scheduler running: due steps every minute, events at once; Ctrl-C stops it")
    stopped.wait()
    embedded.stop(engine, running)
    console.print("scheduler stopped")


PASS_FLOW = "loyalflow-pass"
PASS_DEPLOYMENT = "every-minute"
PASS_ENTRYPOINT = "flows/pass_flows.py:loyalflow_pass"


def deployment_specs() -> list[dict]:
    """The production deployment: the pass every minute, one run at a time (a run that would overlap is cancelled)."""
    from prefect.client.schemas.objects import (
        ConcurrencyLimitConfig,
        ConcurrencyLimitStrategy,
    )

    return [dict(name=PASS_DEPLOYMENT, cron="* * * * *", parameters={},
                 concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW),
                 description="Enroll journeys whose cron fired and advance every due step, by priority.",
                 tags=["loyalflow"])]


def range_deployment_spec() -> dict:
    """The fan-out target: no schedule, started by the pass once per id range, any number at once."""
    from flows.fanout import RANGE_DEPLOYMENT

    return dict(name=RANGE_DEPLOYMENT, tags=["loyalflow"],
                description="Advance one journey's due enrollments in an id range (started by loyalflow-pass).")


def deploy(work_pool: str = typer.Option("loyalflow", "--work-pool", help="A process work pool (created if missing)."),
           source: Path = typer.Option(Path("."), "--source", help="The project folder workers load flows from.")) -> None:
    """Register the every-minute pass on a process work pool of a Prefect server; then start workers."""
    from flows import prefect_server, runtime

    runtime.quiet_prefect()
    url = prefect_server.require_server("deploy")
    existing = _pass_deployment()
    if existing is not None and existing.work_pool_name is None and _is_polled(existing):
        raise prefect_server.PrefectServerMissing(
            f"`loyalflow serve-flows` is serving {PASS_FLOW}/{PASS_DEPLOYMENT} on {url}: stop it first, "
            "then retry a minute later (one runtime per server: workers on a work pool, or serve-flows)")
    if not (source / PASS_ENTRYPOINT.split(":")[0]).is_file():
        raise prefect_server.PrefectServerMissing(f"--source {source} is not a loyalflow checkout "
                                                  f"(no {PASS_ENTRYPOINT.split(':')[0]})")
    from flows import fanout
    from flows.pass_flows import loyalflow_pass

    _ensure_work_pool(work_pool)
    # large journeys of a pass fan out as runs of the range deployment, which any worker of the pool takes
    ranges = fanout.advance_range.from_source(source=str(source.resolve()), entrypoint=fanout.RANGE_ENTRYPOINT)
    ranges.to_deployment(work_pool_name=work_pool, **range_deployment_spec()).apply()
    flow = loyalflow_pass.from_source(source=str(source.resolve()), entrypoint=PASS_ENTRYPOINT)
    for spec in deployment_specs():
        spec["parameters"] = {**spec["parameters"], "range_deployment": fanout.RANGE_NAME}
        flow.to_deployment(work_pool_name=work_pool, **spec).apply()  # no image build, no Prefect advice
        console.print(f"deployed {PASS_FLOW}/{spec['name']} ({spec['cron']}, one run at a time; large journeys "
                      f"fanned out as {fanout.RANGE_NAME} runs) on work pool {work_pool} at {url}",
                      highlight=False, soft_wrap=True)
    for name in _remove_journey_deployments():
        console.print(f"removed the old per-journey deployment {name} (the pass enrolls every journey at its cron)",
                      highlight=False)
    console.print(f"start workers: prefect worker start --pool {work_pool} --limit 2", highlight=False)


def _pass_deployment():  # type: ignore[no-untyped-def]
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            return client.read_deployment_by_name(f"{PASS_FLOW}/{PASS_DEPLOYMENT}")
        except ObjectNotFound:
            return None


def _is_polled(deployment) -> bool:  # type: ignore[no-untyped-def]
    """Whether a runner polled the deployment lately (Prefect marks it READY while it is served)."""
    status = getattr(deployment, "status", None)
    return getattr(status, "value", status) == "READY"


def _remove_journey_deployments() -> list[str]:
    """Deployments of `journey-tick` left by an earlier `loyalflow deploy`: the pass replaces them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    removed = []
    with get_client(sync_client=True) as client:
        for d in client.read_deployments(flow_filter=FlowFilter(name=FlowFilterName(any_=["journey-tick"]))):
            if "loyalflow" in (d.tags or []):
                client.delete_deployment(d.id)
                removed.append(f"journey-tick/{d.name}")
    return sorted(removed)


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
    """Serve the every-minute pass from this one process (small installs; needs a Prefect server)."""
    from flows import prefect_server, runtime

    runtime.quiet_prefect()
    url = prefect_server.require_server("serve-flows")
    existing = _pass_deployment()
    if existing is not None and existing.work_pool_name:
        raise prefect_server.PrefectServerMissing(
            f"{PASS_FLOW}/{PASS_DEPLOYMENT} is deployed on work pool {existing.work_pool_name!r} (`loyalflow deploy`), "
            f"whose workers run it; serve it from here instead after `prefect deployment delete "
            f"{PASS_FLOW}/{PASS_DEPLOYMENT}`")
    import asyncio
    import signal

    from prefect.runner import Runner

    from flows.pass_flows import loyalflow_pass

    runner = Runner(pause_on_shutdown=False)
    for spec in deployment_specs():
        runner.add_deployment(loyalflow_pass.to_deployment(**spec))
    # Ctrl-C takes the runner's own graceful stop, as SIGTERM does: `prefect.serve` leaves SIGINT to
    # asyncio, whose cancellation a run being started can absorb, and the process then never stops
    signal.signal(signal.SIGINT, lambda *_: runner.handle_sigterm())
    console.print(f"serving {PASS_FLOW}/{PASS_DEPLOYMENT} (every minute) from {url}; Ctrl-C stops it",
                  highlight=False, soft_wrap=True)
    asyncio.run(runner.start())
    console.print("serve-flows stopped")


def register_running(app: typer.Typer) -> None:
    app.command("scheduler")(scheduler)
    app.command("deploy")(deploy)
    app.command("serve-flows")(serve_flows)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("report")(report)
    register_running(app)
