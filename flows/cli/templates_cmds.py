"""`loyalflow preview`, `loyalflow gallery` and `loyalflow check-templates`: see what members will read."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Optional

import typer

from audiences.errors import LoyalflowError
from flows.cli.app import console
from flows.cli.output import FORMAT, Format, print_json
from templates.rendered import RenderedEmail, RenderedSms

# C0 controls but tab and newline, DEL and C1 controls: ESC sequences from member data could
# rewrite the terminal (colours, titles, hidden text, OSC 52 clipboard writes)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def safe_for_terminal(text: str) -> str:
    r"""`text` with every control character shown as a visible escape (`\x1b`), never interpreted."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def show(text: str, **style: str) -> None:
    console.print(safe_for_terminal(text), markup=False, highlight=False, soft_wrap=True, **style)


class MemberNotFound(LoyalflowError):
    """`--member ID` names no member in the database."""


def _journey_for(folder: str) -> object | None:
    """The journey whose templates live in `folder` (same name first), for its context contract."""
    from journeys.contract import contracts_by_folder
    from journeys.registry import load_all

    journeys = load_all().journeys
    if folder in journeys:
        return journeys[folder]
    contract = contracts_by_folder(journeys.values()).get(folder)
    return journeys.get(contract.journey) if contract is not None else None


def _member_context(journey: object | None, folder: str, member_id: int, locale: str | None, at: str | None) -> Any:
    from audiences.db import make_engine, session_scope
    from flows.cli.options import parse_instant
    from flows.migrate import require_current
    from journeys.member_context import member_context

    if journey is None:
        raise MemberNotFound(f"no journey uses the templates in {folder!r}, so there is no member data to "
                             "render with; preview without --member")
    engine = require_current(make_engine())
    try:
        with session_scope(engine) as session:
            try:
                return member_context(session, journey, member_id, locale, parse_instant(at))  # type: ignore[arg-type]
            except LoyalflowError as exc:
                raise MemberNotFound(str(exc)) from None
    finally:
        engine.dispose()


def preview(
    journey: str = typer.Argument(..., help="Journey name, e.g. points_expiring."),
    step: str = typer.Argument(..., help="Step name, e.g. email_7d."),
    member: Optional[int] = typer.Option(None, "--member", help="Render with this member's real data (audience "
                                                                "row, enricher, member record)."),
    locale: Optional[str] = typer.Option(None, "--locale", help="Locale (default: the member's, else en)."),
    html: Optional[Path] = typer.Option(None, "--html", help="Also write the email's HTML to this file."),
    at: Optional[str] = typer.Option(None, "--at", help="With --member: evaluate the audience at this instant "
                                                        "(ISO; default now)."),
) -> None:
    """Render one message with sample data from the journey's context contract, or for a real member."""
    from journeys.contract import contract_for
    from templates.library import TemplateLibrary
    from templates.samples import sample_context

    lib = TemplateLibrary.load(eager=False)
    source_file = lib.resolve(journey, step, locale or "en")  # an unknown template fails before the database
    definition = _journey_for(journey)
    if member is not None:
        found = _member_context(definition, journey, member, locale, at)
        chosen = locale or str(found.context.get("locale") or "en")
        context = found.context
        origin = (f"member {member}'s data from {found.note}: {', '.join(found.real) or 'nothing'}; "
                  f"from samples: {', '.join(found.sampled) or 'nothing'}")
    else:
        chosen = locale or "en"
        contract = contract_for(definition) if definition is not None else None  # type: ignore[arg-type]
        context = sample_context(journey, chosen, contract=contract)
        origin = "sample data" + (f" from the context contract of journey {contract.journey!r}" if contract else "")
    source = lib.resolve(journey, step, chosen) if chosen != (locale or "en") else source_file
    rendered = lib.render(journey, step, chosen, context)
    show(f"{journey}/{step} · {lib.channel_of(journey, step)} · {chosen} (file {source.name})", style="bold")
    show(f"({origin})")
    if isinstance(rendered, RenderedEmail):
        show(f"Subject:   {rendered.subject}\nPreheader: {rendered.preheader}\n")
        show(rendered.text)
        if html is not None:
            html.write_text(rendered.html, encoding="utf-8")
            show(f"HTML written to {html}")
    elif isinstance(rendered, RenderedSms):
        show(rendered.text)
        show(f"\n{rendered.encoding}, {rendered.segments} segment(s)")
    else:
        payload = {"title": rendered.title, "body": rendered.body, "deep_link": rendered.deep_link, "data": rendered.data}
        show(json.dumps(payload, ensure_ascii=False, indent=2, default=str))


def gallery(out_dir: Path = typer.Argument(..., help="Folder to write the gallery into (index.html).")) -> None:
    """Write a static HTML gallery of every template in every locale."""
    from journeys.contract import context_factory
    from journeys.registry import load_all
    from templates.gallery import write_gallery

    index = write_gallery(out_dir, context_for=context_factory(load_all().journeys.values()))
    console.print(f"gallery written to {index}", markup=False, highlight=False, soft_wrap=True)


def check_templates_cmd(
    root: Optional[Path] = typer.Option(None, "--root", help="Template folder (default: templates/library)."),
    fmt: Format = FORMAT,
) -> None:
    """Render every template in every locale with sample data; list each problem with file:line."""
    from templates.checks import check_templates
    from templates.library import TemplateLibrary

    context_for = None
    if root is None:  # the program's templates: render with what their journeys' contracts declare
        from journeys.contract import context_factory
        from journeys.registry import load_all

        context_for = context_factory(load_all().journeys.values())
    problems = check_templates(root, context_for=context_for)
    if fmt is Format.json:
        lib = TemplateLibrary.load(root, eager=False)
        print_json({"ok": not problems, "problems": [str(p) for p in problems],
                    "templates": sorted("/".join(t) if isinstance(t, tuple) else str(t) for t in lib.templates())})
        if problems:
            raise typer.Exit(1)
        return
    for problem in problems:
        console.print(str(problem), markup=False, highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(1)
    lib = TemplateLibrary.load(root, eager=False)
    console.print(f"{len(lib.templates())} templates OK in every locale", markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("preview")(preview)
    app.command("gallery")(gallery)
    app.command("check-templates")(check_templates_cmd)
