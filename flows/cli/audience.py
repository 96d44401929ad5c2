"""`loyalflow audience`: list audiences, count them, explain one member."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import typer
from rich.table import Table

from audiences.db import make_engine, session_scope
from audiences.errors import InvalidParameter, UnknownRecipient
from audiences.queries import all_audiences, get_audience
from flows.cli.app import console
from flows.cli.options import parse_instant, parse_pairs
from flows.cli.output import (
    FORMAT,
    Format,
    emit,
    plain,
    print_json,
    print_table,
    timestamp,
)
from flows.migrate import require_current

audience_app = typer.Typer(help="Audiences: who is in them now, and why.", no_args_is_help=True)

AT = typer.Option(None, "--at", help="Evaluate at this instant (ISO; default now, UTC).")
PARAM = typer.Option(None, "--param", "-p", help="Audience parameter name=value (repeatable).")


def _default(f: dataclasses.Field) -> Any:  # type: ignore[type-arg]
    """A parameter's default; "required" when it has none (an SQL audience file may declare one so)."""
    return "required" if f.default is dataclasses.MISSING else f.default


@audience_app.command("list")
def list_audiences(fmt: Format = FORMAT) -> None:
    """Every audience (built-in, and your program's audience files) with its parameters and defaults."""
    audiences = all_audiences()
    if fmt is Format.json:
        print_json([{"name": aud.name, "recipient": aud.recipient, "description": aud.description,
                     "parameters": {f.name: _default(f) for f in dataclasses.fields(aud.Params)}}
                    for aud in audiences.values()])
        return
    table = Table("name", "recipient", "parameters", "description")
    for aud in audiences.values():
        params = ", ".join(f"{f.name}={_default(f)!r}" for f in dataclasses.fields(aud.Params))
        table.add_row(aud.name, aud.recipient, params, aud.description)
    print_table(table)


def _out_of_range(name: str, pairs: dict[str, str]) -> InvalidParameter:
    given = ", ".join(f"{k}={v}" for k, v in pairs.items()) or "the defaults"
    return InvalidParameter(f"audience {name!r}: a parameter is out of range ({given}); use a smaller value")


@audience_app.command("count")
def count(name: str, at: str = AT, param: list[str] = PARAM, fmt: Format = FORMAT) -> None:
    """How many recipients are in the audience."""
    aud = get_audience(name)
    pairs = parse_pairs(param)
    params = aud.parse_params(pairs)
    now = parse_instant(at)
    with session_scope(require_current(make_engine())) as session:
        try:
            total = aud.count(session, now, **dataclasses.asdict(params))
        except OverflowError:
            raise _out_of_range(name, pairs) from None
    if fmt is Format.json:
        print_json({"audience": name, "recipient": aud.recipient, "at": timestamp(now), "count": total,
                    "parameters": dataclasses.asdict(params)})
        return
    plain(f"{name}: {total:,} {aud.recipient}s at {timestamp(now)}")


def _fmt(value: Any) -> str:
    if isinstance(value, datetime):
        return timestamp(value)
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


@audience_app.command("show")
def show(name: str, member: int = typer.Option(..., "--member", "-m", help="Member (or staff) id."),
         at: str = AT, param: list[str] = PARAM, fmt: Format = FORMAT) -> None:
    """Explain why one member is in the audience or not, criterion by criterion."""
    aud = get_audience(name)
    params = aud.parse_params(parse_pairs(param))
    now = parse_instant(at)
    with session_scope(require_current(make_engine())) as session:
        try:
            why = aud.explain(session, now, member, **dataclasses.asdict(params))
        except OverflowError:
            raise _out_of_range(name, parse_pairs(param)) from None
    if not why.exists:
        raise UnknownRecipient(f"audience {name!r}: {why.no_rows_reason}")
    rows = [{"fields": {k: v for k, v in row.fields.items() if k != "first_name"}, "included": row.included,
             "criteria": [{"name": c.name, "meaning": c.describe, "passed": c.passed} for c in row.criteria]}
            for row in why.rows]
    if fmt is Format.table:
        verdict = "[green]IN[/]" if why.included else "[red]OUT[/]"
        console.print(f"{aud.recipient} {member} is {verdict} of {name} at {timestamp(now)}")
        if why.no_rows_reason:
            console.print(f"  {why.no_rows_reason}")

    def tables() -> list[Table]:
        out = []
        for row in rows:
            title = ", ".join(f"{k}={_fmt(v)}" for k, v in row["fields"].items())
            table = Table("", "criterion", "meaning", title=title)
            for c in row["criteria"]:
                table.add_row("[green]✓[/]" if c["passed"] else "[red]✗[/]", c["name"], c["meaning"])
            out.append(table)
        return out

    emit(fmt, {"audience": name, "recipient": aud.recipient, "member": member, "at": timestamp(now),
               "included": why.included, "no_rows_reason": why.no_rows_reason, "rows": rows}, tables)


def register(app: typer.Typer) -> None:
    app.add_typer(audience_app, name="audience")
