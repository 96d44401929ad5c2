"""Where the program lives: the shipped example, or a folder of your own (`LOYALFLOW_PROGRAM_DIR`).

A program is three folders found by convention, like a dbt project:

    <program>/journeys/*.py                   one `JOURNEY = Journey(...)` per file
    <program>/templates/<journey>/<step>.<locale>.(mjml|sms.txt|push.json)
    <program>/audiences/*.sql | *.py          audiences as SQL text with a header, or Python queries

Without `LOYALFLOW_PROGRAM_DIR` the shipped program is used (journeys/definitions, templates/library,
and the audiences of audiences/queries). The built-in audiences stay available to every program.
"""

from __future__ import annotations

import os
from pathlib import Path

from audiences.errors import LoyalflowError

ENV = "LOYALFLOW_PROGRAM_DIR"
SHIPPED_JOURNEYS = Path(__file__).resolve().parent.parent / "journeys" / "definitions"
SHIPPED_TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "library"


class ProgramDirInvalid(LoyalflowError):
    """LOYALFLOW_PROGRAM_DIR (or --program) names something that is not a program folder."""


def program_dir() -> Path | None:
    """The program folder chosen by the environment, or None for the shipped program."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return None
    path = Path(raw).expanduser()
    if not path.is_dir():
        raise ProgramDirInvalid(f"{ENV}={raw}: not a folder (a program folder holds journeys/, templates/ "
                                "and audiences/)")
    if not any((path / sub).is_dir() for sub in ("journeys", "templates", "audiences")):
        raise ProgramDirInvalid(f"{ENV}={raw}: has none of journeys/, templates/, audiences/")
    return path.resolve()


def use_program_dir(path: str | os.PathLike[str] | None) -> None:
    """Point every command of this process at `path` (what `--program DIR` does)."""
    if path is None:
        os.environ.pop(ENV, None)
    else:
        os.environ[ENV] = str(Path(path).expanduser().resolve())
    program_dir()  # fail now, with the reason, rather than at first use


def journeys_folder() -> Path:
    found = program_dir()
    return found / "journeys" if found is not None else SHIPPED_JOURNEYS


def templates_folder() -> Path:
    found = program_dir()
    return found / "templates" if found is not None else SHIPPED_TEMPLATES


def audiences_folder() -> Path | None:
    """The program's own audience files (None for the shipped program, whose audiences are Python)."""
    found = program_dir()
    return found / "audiences" if found is not None else None
