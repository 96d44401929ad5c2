"""The Typer application and the entry point that turns known errors into one clear line."""

from __future__ import annotations

import logging
import sys

import click
import typer
from rich.console import Console
from sqlalchemy.exc import OperationalError

from audiences.errors import LoyalflowError

app = typer.Typer(
    name="loyalflow",
    help="Code-first communications for loyalty programs: journeys, audiences, templates, channels.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

console = Console()
err_console = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> None:
    """Print one line to stderr and exit non-zero; for errors a person can fix."""
    err_console.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = app(args=argv, standalone_mode=False)
    except LoyalflowError as exc:
        fail(str(exc))
    except OperationalError as exc:  # the database went away or refused mid-command
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        fail(f"database error: {reason}")
    except click.exceptions.Abort:
        fail("aborted", 130)
    except click.exceptions.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    if isinstance(result, int) and result:
        raise SystemExit(result)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
