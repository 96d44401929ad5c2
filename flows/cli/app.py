"""The Typer application and the entry point that turns every error a person can fix into one line.

Typer 0.29 bundles its own copy of click (`typer._click`); older Typer uses `click` itself. A parsing
error may come from either, so both are caught: one `error:` line, one usage hint, exit code 2.
"""

from __future__ import annotations

import logging
import sys
from importlib import metadata
from typing import Any

import click
import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import OperationalError

from audiences.db import set_create_missing
from audiences.errors import LoyalflowError


def _click_modules() -> tuple[Any, ...]:
    modules: list[Any] = [click]
    try:
        import typer._click as bundled  # typer >= 0.29
    except ImportError:  # pragma: no cover - older typer uses click itself
        return tuple(modules)
    if bundled is not click:
        modules.append(bundled)
    return tuple(modules)


CLICKS = _click_modules()


def _classes(name: str) -> tuple[type[BaseException], ...]:
    """Every class called `name` in click, typer's bundled click and typer.exceptions (where it moved in 0.29)."""
    places = [m.exceptions for m in CLICKS] + [getattr(typer, "exceptions", None)]
    found = {getattr(place, name) for place in places if place is not None and hasattr(place, name)}
    return tuple(found)


USAGE_ERRORS = _classes("UsageError")
CLICK_ERRORS = _classes("ClickException")
ABORTS = _classes("Abort")
NO_ARGS_IS_HELP = _classes("NoArgsIsHelpError")


def version() -> str:
    try:
        return metadata.version("loyalflow")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a tree that was never installed
        return "unknown (not installed)"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"loyalflow {version()}")
        raise typer.Exit()


app = typer.Typer(
    name="loyalflow",
    help="Code-first communications for loyalty programs: journeys, audiences, templates, channels.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    _version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                  help="Print loyalflow's version and exit."),
    program: str = typer.Option(None, "--program", metavar="DIR",
                                help="Your program folder (journeys/, templates/, audiences/); "
                                     "default LOYALFLOW_PROGRAM_DIR, else the shipped example."),
) -> None:
    """Code-first communications for loyalty programs: journeys, audiences, templates, channels."""
    if program is not None:
        from audiences.program_dir import use_program_dir

        use_program_dir(program)


def _hide_flag_types() -> None:
    """Typer 0.29's rich help prints `<bool>` beside every flag (even --help); a flag takes no value."""
    try:
        from typer.core import TyperOption
    except ImportError:  # pragma: no cover
        return
    original = getattr(TyperOption, "display_type_rich", None)
    if original is None or getattr(original, "_loyalflow", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        return None if getattr(self, "is_flag", False) else original(self, ctx)

    display_type_rich._loyalflow = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_hide_flag_types()

console = Console()
err_console = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> None:
    """Print one line to stderr and exit non-zero; for errors a person can fix."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False)
    raise SystemExit(code)


def usage_error(exc: Any) -> None:
    """A parsing error: the message on one line, then where to read the usage. Exit code 2."""
    message = " ".join(str(exc.format_message()).split())
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else "loyalflow"
    err_console.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False)
    err_console.print(f"usage: {path} --help", markup=False, highlight=False)
    raise SystemExit(2)


def _os_error(exc: OSError) -> str:
    if exc.filename:
        return f"cannot use {exc.filename}: {exc.strerror or type(exc).__name__}"
    return f"{type(exc).__name__}: {exc.strerror or exc}"


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    creating = set_create_missing(False)  # read-only commands never leave an empty SQLite file behind
    try:
        result = _invoke(argv)
    finally:
        set_create_missing(creating)
    if isinstance(result, int) and result:
        raise SystemExit(result)


def _invoke(argv: list[str] | None) -> Any:
    try:
        return app(args=argv, standalone_mode=False, prog_name="loyalflow")
    except LoyalflowError as exc:
        fail(str(exc))
    except OperationalError as exc:  # the database went away or refused mid-command
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        fail(f"database error: {reason}")
    except NO_ARGS_IS_HELP as exc:  # `loyalflow` or `loyalflow audience` alone: the help is the answer
        typer.echo(exc.format_message())
        raise SystemExit(0) from None
    except USAGE_ERRORS as exc:
        usage_error(exc)
    except ABORTS:
        fail("aborted", 130)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except CLICK_ERRORS as exc:
        fail(" ".join(str(exc.format_message()).split()), exc.exit_code or 1)
    # below: mistakes in files, paths and values that reach us from libraries; the message names the
    # file or the value's kind, never the content of a row (no member data)
    except UnicodeDecodeError as exc:
        fail(f"the file is not UTF-8 text: byte {exc.object[exc.start:exc.start + 1]!r} at offset {exc.start} "
             f"({exc.reason}); save it as UTF-8 and try again")
    except OverflowError as exc:
        fail(f"a date or number is out of range ({exc}); use a value closer to today")
    except OSError as exc:
        fail(_os_error(exc))
    return None


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
