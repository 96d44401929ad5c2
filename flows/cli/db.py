"""`loyalflow db`: schema migrations."""

from __future__ import annotations

import typer

from audiences.db import make_engine, safe_url
from flows import migrate
from flows.cli.app import console

db_app = typer.Typer(help="Database schema: apply or revert migrations.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade(to: str = typer.Option("heads", help="Target revision (default: the latest of every layer).")) -> None:
    """Apply migrations up to the latest schema."""
    engine = make_engine(create=True)
    migrate.upgrade(engine, to)
    console.print(f"database at {safe_url(engine.url)} is at {', '.join(sorted(migrate.current_heads(engine)))}")


@db_app.command("downgrade")
def downgrade(to: str = typer.Option(..., help="Target revision, or 'base' to remove every table.")) -> None:
    """Revert migrations down to a revision."""
    engine = make_engine()
    migrate.downgrade(engine, to)
    heads = migrate.current_heads(engine)
    console.print(f"database at {safe_url(engine.url)} is at {', '.join(sorted(heads)) or 'base'}")


@db_app.command("current")
def current() -> None:
    """Show the applied revisions and whether the schema is up to date."""
    engine = make_engine()
    heads = migrate.current_heads(engine)
    state = "up to date" if migrate.is_up_to_date(engine) else "behind: run `loyalflow db upgrade`"
    console.print(f"{', '.join(sorted(heads)) or 'base'} ({state})")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
