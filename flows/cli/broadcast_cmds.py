"""`loyalflow broadcast create|preview|send|cancel|list`: a newsletter or announcement to an audience.

`send` enrolls the audience at once (due from `--at`, spread over `--over`); the scheduler's passes
(`loyalflow scheduler`, or the pass deployment) deliver at those instants through the usual gate.
`send --deliver` also runs the passes due by now in this process (a one-off send from a laptop).
"""

from __future__ import annotations

from datetime import datetime, timezone

import typer
from rich.table import Table

from audiences.db import make_engine, session_factory
from flows.cli.options import parse_instant, parse_pairs
from flows.cli.output import FORMAT, Format, plain, print_json, print_table, timestamp
from flows.migrate import require_current

broadcast_app = typer.Typer(help="Broadcasts: one-off or scheduled sends to an audience, through the same gate.",
                            no_args_is_help=True)


def _factory():  # type: ignore[no-untyped-def]
    return session_factory(require_current(make_engine()))


@broadcast_app.command("create")
def create(
    name: str = typer.Argument(..., help="A short name: lower-case letters, digits, - and _."),
    template: list[str] = typer.Option(..., "--template", help="broadcasts/<step>; repeat for a fallback chain."),
    audience: str = typer.Option("members", "--audience", help="Audience name (default: every active member)."),
    param: list[str] = typer.Option(None, "--param", help="Audience parameter name=value (e.g. tier=gold)."),
    purpose: str = typer.Option(None, "--purpose", help="marketing or transactional (default: the template's)."),
    priority: int = typer.Option(40, "--priority", help="Higher wins under the frequency cap."),
    holdout: int = typer.Option(0, "--holdout", min=0, max=50, help="Percent enrolled but not messaged (lift)."),
) -> None:
    """A draft broadcast, checked now: audience, parameters, templates and purpose."""
    from journeys import broadcasts

    with _factory()() as session:
        row = broadcasts.create(session, name, templates=template, audience=audience, params=parse_pairs(param),
                                purpose=purpose, priority=priority, holdout_percent=holdout,
                                now=datetime.now(timezone.utc))
        plain(f"created broadcast {row.name} (draft): {row.templates} to audience {row.audience}; "
              f"`loyalflow broadcast preview {row.name}`, then `loyalflow broadcast send {row.name}`")


@broadcast_app.command("preview")
def preview(
    name: str = typer.Argument(...),
    member: int = typer.Option(None, "--member", help="Render for this member (their name and locale)."),
    locale: str = typer.Option(None, "--locale", help="Render in this locale."),
) -> None:
    """Each template of the broadcast rendered for a member or the sample recipient."""
    from journeys import broadcasts
    from templates import TemplateLibrary

    with _factory()() as session:
        for template, rendered in broadcasts.preview(session, name, TemplateLibrary.load(eager=False),
                                                     member_id=member, locale=locale):
            plain(f"--- {template}")
            for label in ("subject", "title", "preheader"):
                if getattr(rendered, label, None):
                    plain(f"{label}: {getattr(rendered, label)}")
            plain(getattr(rendered, "text", None) or getattr(rendered, "body", ""))


@broadcast_app.command("send")
def send(
    name: str = typer.Argument(...),
    at: str = typer.Option(None, "--at", help="Start at this instant (ISO; default now)."),
    over: str = typer.Option(None, "--over", help="Spread the sends evenly over this window, e.g. 2h."),
    deliver: bool = typer.Option(False, "--deliver", help="Also run the passes due now, in this process."),
) -> None:
    """Enroll the audience now; each member's message goes at their due instant, once, through the gate."""
    from journeys import broadcasts

    now = datetime.now(timezone.utc)
    factory = _factory()
    with factory() as session:
        row = broadcasts.schedule(session, name, now, at=parse_instant(at) if at else None,
                                  over=broadcasts.parse_over(over))
        plain(f"broadcast {row.name}: {row.enrolled:,} enrolled, {row.status.value}, from "
              f"{timestamp(row.scheduled_at or now)}"
              + (f" over {row.throttle_seconds // 60:,} minutes" if row.throttle_seconds else ""))
    if deliver:
        from journeys.passes import run_pass
        from journeys.services import default_services

        result = run_pass(factory, {}, datetime.now(timezone.utc), default_services())
        stats = result.journeys.get(broadcasts.journey_name(row.id))
        plain(f"this pass: {stats.messages if stats else 0:,} sent, "
              f"{sum(stats.skipped.values()) if stats else 0:,} skipped")


@broadcast_app.command("cancel")
def cancel(name: str = typer.Argument(...)) -> None:
    """Stop a broadcast: members not yet handed to a provider exit with reason `cancelled`."""
    from journeys import broadcasts

    with _factory()() as session:
        stopped = broadcasts.cancel(session, name, datetime.now(timezone.utc))
    plain(f"broadcast {name} cancelled: {stopped:,} member(s) will not get it")


@broadcast_app.command("list")
def list_(fmt: Format = FORMAT, at: str = typer.Option(None, "--at", help="Status as of this instant.")) -> None:
    """Every broadcast: status, audience, when, and what happened (sent, skipped by reason, waiting)."""
    from dataclasses import asdict

    from journeys import broadcasts

    with _factory()() as session:
        rows = broadcasts.progress(session, parse_instant(at))
    if fmt is Format.json:
        print_json([asdict(p) for p in rows])
        return
    table = Table("broadcast", "status", "audience", "templates", "from", "enrolled", "held out", "waiting", "sent",
                  "skipped", "failed", "cancelled", title="broadcasts")
    for p in rows:
        table.add_row(p.name, p.status, p.audience, p.templates, timestamp(p.scheduled_at) if p.scheduled_at else "–",
                      f"{p.enrolled:,}", f"{p.held_out:,}", f"{p.waiting:,}", f"{p.sent:,}",
                      "; ".join(f"{k} {v:,}" for k, v in sorted(p.skipped.items())) or "0",
                      "; ".join(f"{k} {v:,}" for k, v in sorted(p.failed.items())) or "0", f"{p.cancelled:,}")
    print_table(table)


def register(app: typer.Typer) -> None:
    app.add_typer(broadcast_app, name="broadcast")
