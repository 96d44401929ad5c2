"""`loyalflow preview`, `loyalflow gallery` and `loyalflow check-templates`: see what members will read."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Optional

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


def _member_overrides(member_id: int) -> dict[str, object]:
    from audiences.db import make_engine, session_scope
    from audiences.models import Member

    engine = make_engine()
    try:
        with session_scope(engine) as session:
            member = session.get(Member, member_id)
            if member is None:
                raise MemberNotFound(f"no member with id {member_id} in the database")
            return {"recipient_id": member.id, "first_name": member.first_name,
                    "locale": member.locale, "time_zone": member.time_zone}
    finally:
        engine.dispose()


def preview(
    journey: str = typer.Argument(..., help="Journey name, e.g. points_expiring."),
    step: str = typer.Argument(..., help="Step name, e.g. email_7d."),
    member: Optional[int] = typer.Option(None, "--member", help="Render for this member id (from the database)."),
    locale: Optional[str] = typer.Option(None, "--locale", help="Locale (default: the member's, else en)."),
    html: Optional[Path] = typer.Option(None, "--html", help="Also write the email's HTML to this file."),
) -> None:
    """Render one message with sample data, or for a real member."""
    from templates.library import TemplateLibrary
    from templates.samples import sample_context

    overrides = _member_overrides(member) if member is not None else {}
    chosen = locale or str(overrides.get("locale") or "en")
    lib = TemplateLibrary.load(eager=False)
    context = sample_context(journey, chosen)
    context.update({k: v for k, v in overrides.items() if k != "locale"})
    source = lib.resolve(journey, step, chosen)
    rendered = lib.render(journey, step, chosen, context)
    show(f"{journey}/{step} · {lib.channel_of(journey, step)} · {chosen} (file {source.name})", style="bold")
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
        show(json.dumps(payload, ensure_ascii=False, indent=2))


def gallery(out_dir: Path = typer.Argument(..., help="Folder to write the gallery into (index.html).")) -> None:
    """Write a static HTML gallery of every template in every locale."""
    from templates.gallery import write_gallery

    index = write_gallery(out_dir)
    console.print(f"gallery written to {index}", markup=False, highlight=False, soft_wrap=True)


def check_templates_cmd(
    root: Optional[Path] = typer.Option(None, "--root", help="Template folder (default: templates/library)."),
    fmt: Format = FORMAT,
) -> None:
    """Render every template in every locale with sample data; list each problem with file:line."""
    from templates.checks import check_templates
    from templates.library import TemplateLibrary

    problems = check_templates(root)
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
