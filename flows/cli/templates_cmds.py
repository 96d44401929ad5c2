"""`loyalflow preview`, `loyalflow gallery` and `loyalflow check-templates`: see what members will read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from audiences.errors import LoyalflowError
from flows.cli.app import console
from templates.rendered import RenderedEmail, RenderedSms


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
    console.print(f"{journey}/{step} · {lib.channel_of(journey, step)} · {chosen} (file {source.name})",
                  markup=False, highlight=False, soft_wrap=True, style="bold")
    if isinstance(rendered, RenderedEmail):
        console.print(f"Subject:   {rendered.subject}\nPreheader: {rendered.preheader}\n", markup=False, highlight=False, soft_wrap=True)
        console.print(rendered.text, markup=False, highlight=False, soft_wrap=True)
        if html is not None:
            html.write_text(rendered.html, encoding="utf-8")
            console.print(f"HTML written to {html}", markup=False, highlight=False, soft_wrap=True)
    elif isinstance(rendered, RenderedSms):
        console.print(rendered.text, markup=False, highlight=False, soft_wrap=True)
        console.print(f"\n{rendered.encoding}, {rendered.segments} segment(s)", markup=False, highlight=False, soft_wrap=True)
    else:
        payload = {"title": rendered.title, "body": rendered.body, "deep_link": rendered.deep_link, "data": rendered.data}
        console.print(json.dumps(payload, ensure_ascii=False, indent=2), markup=False, highlight=False, soft_wrap=True)


def gallery(out_dir: Path = typer.Argument(..., help="Folder to write the gallery into (index.html).")) -> None:
    """Write a static HTML gallery of every template in every locale."""
    from templates.gallery import write_gallery

    index = write_gallery(out_dir)
    console.print(f"gallery written to {index}", markup=False, highlight=False, soft_wrap=True)


def check_templates_cmd(
    root: Optional[Path] = typer.Option(None, "--root", help="Template folder (default: templates/library)."),
) -> None:
    """Render every template in every locale with sample data; list each problem with file:line."""
    from templates.checks import check_templates
    from templates.library import TemplateLibrary

    problems = check_templates(root)
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
