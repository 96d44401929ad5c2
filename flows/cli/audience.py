"""`loyalflow audience`: list audiences, count them, explain one member."""

from __future__ import annotations

import dataclasses
from typing import Any

import typer
from rich.table import Table

from audiences.db import make_engine, session_scope
from audiences.errors import UnknownRecipient
from audiences.queries import AUDIENCES, get_audience
from flows.cli.app import console
from flows.migrate import require_current
from flows.cli.options import parse_instant, parse_pairs

audience_app = typer.Typer(help="Audiences: who is in them now, and why.", no_args_is_help=True)

AT = typer.Option(None, "--at", help="Evaluate at this instant (ISO; default now, UTC).")
PARAM = typer.Option(None, "--param", "-p", help="Audience parameter name=value (repeatable).")


@audience_app.command("list")
def list_audiences() -> None:
    """Every audience with its parameters and defaults."""
    table = Table("name", "recipient", "parameters", "description")
    for aud in AUDIENCES.values():
        params = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(aud.Params))
        table.add_row(aud.name, aud.recipient, params, aud.description)
    console.print(table)


@audience_app.command("count")
def count(name: str, at: str = AT, param: list[str] = PARAM) -> None:
    """How many recipients are in the audience."""
    aud = get_audience(name)
    params = aud.parse_params(parse_pairs(param))
    now = parse_instant(at)
    with session_scope(require_current(make_engine())) as session:
        total = aud.count(session, now, **dataclasses.asdict(params))
    console.print(f"{name}: {total:,} {aud.recipient}s at {now.isoformat()}")


def _fmt(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


@audience_app.command("show")
def show(name: str, member: int = typer.Option(..., "--member", "-m", help="Member (or staff) id."),
         at: str = AT, param: list[str] = PARAM) -> None:
    """Explain why one member is in the audience or not, criterion by criterion."""
    aud = get_audience(name)
    params = aud.parse_params(parse_pairs(param))
    now = parse_instant(at)
    with session_scope(require_current(make_engine())) as session:
        why = aud.explain(session, now, member, **dataclasses.asdict(params))
    if not why.exists:
        raise UnknownRecipient(f"audience {name!r}: {why.no_rows_reason}")
    verdict = "[green]IN[/]" if why.included else "[red]OUT[/]"
    console.print(f"{aud.recipient} {member} is {verdict} of {name} at {now.isoformat()}")
    if why.no_rows_reason:
        console.print(f"  {why.no_rows_reason}")
    for row in why.rows:
        table = Table("", "criterion", "meaning", title=", ".join(f"{k}={_fmt(v)}" for k, v in row.fields.items()
                                                            if k not in ("first_name",)))
        for c in row.criteria:
            table.add_row("[green]✓[/]" if c.passed else "[red]✗[/]", c.name, c.describe)
        console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(audience_app, name="audience")
