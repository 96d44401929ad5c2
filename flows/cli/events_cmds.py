"""`loyalflow events import FILE.jsonl`: member events from a file, as POST /v1/events takes them."""

from __future__ import annotations

from datetime import datetime, timezone

import typer

from audiences.db import make_engine, session_factory
from audiences.events import import_jsonl
from flows.cli.app import console, err_console
from flows.migrate import require_current

events_app = typer.Typer(help="Member events (purchase, redemption, ...): import them from a file.",
                         no_args_is_help=True)

MAX_REPORTED = 100


@events_app.command("import")
def import_(path: str = typer.Argument(..., help="JSON Lines: one event per line, {type, member_id, occurred_at, "
                                                "idempotency_key, properties}.")) -> None:
    """Append events from a JSON Lines file (streamed); good lines are kept, bad ones listed by line.

    Exit code 2 when any line was rejected. Re-importing the same file is a no-op (duplicates).
    """
    try:
        open(path, encoding="utf-8").close()
    except OSError as exc:
        err_console.print(f"error: cannot read {path}: {exc.strerror}", highlight=False, markup=False)
        raise typer.Exit(2) from None
    engine = require_current(make_engine())
    report = import_jsonl(session_factory(engine), path, datetime.now(timezone.utc))
    for result in report.errors[:MAX_REPORTED]:
        reasons = "; ".join(f"{e.field + ' ' if e.field else ''}{e.message}" for e in result.errors)
        err_console.print(f"{path}:{result.index}: {reasons}", highlight=False, markup=False, soft_wrap=True)
    if len(report.errors) > MAX_REPORTED:
        err_console.print(f"... and {len(report.errors) - MAX_REPORTED} more rejected line(s)", highlight=False,
                          markup=False)
    console.print(report.summary(), highlight=False, markup=False, soft_wrap=True)
    if report.errors:
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    app.add_typer(events_app, name="events")
