"""`loyalflow new journey NAME --audience A` (a journey file and its templates in every locale) and
`loyalflow migrate-version NAME --from V --to W` (move in-flight enrollments to another version)."""

from __future__ import annotations

from pathlib import Path

import typer

from audiences.errors import InvalidParameter
from flows.cli.app import console

new_app = typer.Typer(help="Scaffold a new part of your program.", no_args_is_help=True)

_JOURNEY = '''"""{name}: TODO say who it is for and why (scaffolded by `loyalflow new journey`)."""

from journeys.dsl import Journey, email, send

JOURNEY = Journey(
    name="{name}",
    description="TODO: what this journey does.",
    version=1,
    purpose="{purpose}",
    audience="{audience}",
    occurrence_key="once",              # or an audience column: a new value is a new enrollment
    schedule="0 9 * * *",               # cron, UTC: when members enter (the audience is diffed)
    steps=[
        send(email("{name}/email_hello")),
    ],
)
'''

_TEXT = {  # subject, greeting, body: enough to check and preview; the marketer writes the real copy
    "en": ("News from {{ program.name }}", "Hello", "We have something for you."),
    "fr": ("Du nouveau chez {{ program.name }}", "Bonjour", "Nous avons quelque chose pour vous."),
    "de": ("Neuigkeiten von {{ program.name }}", "Hallo", "Wir haben etwas für Sie."),
    "es": ("Novedades de {{ program.name }}", "Hola", "Tenemos algo para usted."),
    "ja": ("{{ program.name }}からのお知らせ", "こんにちは", "お知らせがあります。"),
}

_EMAIL = '''---
purpose: {purpose}
subject: {subject}
preheader: {body}
---
<mjml>
  <mj-body background-color="#f3f4f6">
    <mj-section background-color="#ffffff" padding="24px 0">
      <mj-column>
        <mj-text font-size="20px" font-weight="bold">{greeting}, <bdi>{{{{ first_name or '' }}}}</bdi></mj-text>
        <mj-text>{body}</mj-text>
        <mj-button href="{{{{ links.app_url }}}}">{{{{ program.name }}}}</mj-button>
      </mj-column>
    </mj-section>
    <mj-section padding="16px 0">
      <mj-column>
        <mj-text font-size="12px" color="#6b7280" align="center">
          <p><a href="{{{{ links.preferences_url }}}}">Preferences</a> · <a href="{{{{ links.unsubscribe_url }}}}">Unsubscribe</a></p>
        </mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
'''


def scaffold_journey(name: str, audience: str, purpose: str = "marketing") -> list[Path]:
    """Write the journey file and one email template per shipped locale; refuse (writing nothing) an
    invalid or taken name, an unknown audience or purpose."""
    from audiences.program_dir import journeys_folder, templates_folder
    from audiences.queries import get_audience
    from journeys.check import JOURNEY_NAME
    from journeys.registry import journey_files, load_all
    from templates.locales import SUPPORTED_LOCALES
    from templates.vocabulary import PURPOSES

    if not JOURNEY_NAME.fullmatch(name):
        raise InvalidParameter(f"journey name {name!r} must be lower-case letters, digits and '_', starting with a "
                               "letter (at most 64)")
    if purpose not in PURPOSES:
        raise InvalidParameter(f"unknown purpose {purpose!r}; known: {', '.join(PURPOSES)}")
    get_audience(audience)  # UnknownAudience lists the known ones
    journey_file = journeys_folder() / f"{name}.py"
    template_dir = templates_folder() / name
    taken = [str(p) for p in (journey_file, template_dir) if p.exists()]
    taken += [str(f) for f in journey_files() if f.stem == name and str(f) not in taken]
    if name in load_all().journeys:
        taken.append(f"journey {name!r} is already defined at {load_all().journeys[name].where}")
    if taken:
        raise InvalidParameter(f"journey {name!r} already exists: {'; '.join(taken)}; nothing was written")
    files = {journey_file: _JOURNEY.format(name=name, audience=audience, purpose=purpose)}
    for locale in SUPPORTED_LOCALES:
        subject, greeting, body = _TEXT.get(locale, _TEXT.get(locale.split("-")[0], _TEXT["en"]))
        files[template_dir / f"email_hello.{locale}.mjml"] = _EMAIL.format(
            purpose=purpose, subject=subject, greeting=greeting, body=body)
    written: list[Path] = []
    try:
        for path, content in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("x", encoding="utf-8") as out:
                out.write(content)
            written.append(path)
    except OSError:
        for path in written:
            path.unlink(missing_ok=True)
        if template_dir.is_dir() and not any(template_dir.iterdir()):
            template_dir.rmdir()
        raise
    return written


@new_app.command("journey")
def new_journey(
    name: str = typer.Argument(..., help="Journey name (lower-case, digits, '_')."),
    audience: str = typer.Option(..., "--audience", help="The audience it enrolls from (`loyalflow audience list`)."),
    purpose: str = typer.Option("marketing", "--purpose", help="marketing, transactional or staff."),
) -> None:
    """Scaffold a journey file and its email template in every shipped locale, ready for `loyalflow check`."""
    for path in scaffold_journey(name, audience, purpose):
        console.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"next: edit the copy, then `loyalflow check` and `loyalflow preview {name} email_hello`",
                  markup=False, highlight=False, soft_wrap=True)


def migrate_version(
    journey: str = typer.Argument(..., help="Journey name."),
    from_version: int = typer.Option(..., "--from", help="The version its enrollments are on."),
    to_version: int = typer.Option(..., "--to", help="The version to move them to (the current one, usually)."),
    at: str = typer.Option(None, "--at", help="Due instant of the moved enrollments (ISO; default now)."),
) -> None:
    """Move a journey's active enrollments to another version: they restart at its first step; steps
    already sent are not sent again (the ledger keys them by enrollment and step key)."""
    from audiences.db import make_engine, session_scope
    from flows.cli.options import parse_instant
    from flows.migrate import require_current
    from journeys.registry import get_journey
    from journeys.versions import migrate_version as move

    definition = get_journey(journey)
    now = parse_instant(at)
    with session_scope(require_current(make_engine())) as session:
        moved = move(session, definition, from_version, to_version, now)
        session.commit()
    console.print(f"{journey}: moved {moved} active enrollment(s) from version {from_version} to {to_version}",
                  markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(new_app, name="new")
    app.command("migrate-version")(migrate_version)


__all__ = ["register", "scaffold_journey"]
