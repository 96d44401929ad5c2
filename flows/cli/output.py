"""How listings leave the CLI: tables that never truncate, plain lines that never wrap, JSON for machines.

Rich truncates a cell that does not fit (`points_…`) and wraps long lines, which breaks identifiers
and copy-paste commands. Here every column folds instead of truncating, identifier-like words keep
their full width where the terminal allows it, and when the output is not a terminal (a pipe, a
file) the table is printed at its natural width, unwrapped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, datetime
from enum import Enum
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from flows.cli.app import console

LONGEST_KEPT_WORD = 40  # words longer than this may fold even on a terminal


class Format(str, Enum):
    """Output of a listing command: a table for people, JSON for machines."""

    table = "table"
    json = "json"


FORMAT = typer.Option(Format.table, "--format", help="table (for people) or json (for machines).")


def _longest_word(cell: Any) -> int:
    text = cell.plain if hasattr(cell, "plain") else re.sub(r"\[/?[^\]]*\]", "", str(cell))
    return max((len(word) for word in text.split()), default=0)


def print_table(table: Table, target: Console = console) -> None:
    """Print `table` without truncating any cell: on a terminal it fits the width by wrapping between
    words (folding only words longer than LONGEST_KEPT_WORD); elsewhere it is printed unwrapped."""
    widths = []
    for column in table.columns:
        column.overflow = "fold"
        column.no_wrap = False
        longest = max((_longest_word(cell) for cell in column._cells), default=0)
        widths.append(min(max(longest, _longest_word(column.header)), LONGEST_KEPT_WORD))
    if target.is_terminal:
        borders = 3 * len(widths) + 1  # a space either side of every cell, and the rules between
        if sum(widths) + borders <= target.width:  # whole words fit: keep them whole, wrap between them
            for column, width in zip(table.columns, widths):
                column.min_width = width or None
        target.print(table)
        return
    natural = target.measure(table, options=target.options.update(width=10_000)).maximum
    wide = Console(file=target.file, width=max(natural, target.width), no_color=target.no_color,
                   color_system=None, highlight=False)
    wide.print(table)


def plain(text: str, target: Console = console) -> None:
    """One line as is: no markup, no highlighting, never wrapped (commands stay copy-pasteable)."""
    target.print(text, markup=False, highlight=False, soft_wrap=True)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return str(value)


def print_json(data: Any) -> None:
    """Machine output: JSON on stdout, nothing else."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=_default))


def emit(fmt: Format, data: Any, table: Callable[[], Table | list[Table]], target: Console = console) -> None:
    """One listing, either way: `data` as JSON for machines, or the table(s) `table()` builds for
    people (built only when asked for), printed untruncated by print_table."""
    if fmt is Format.json:
        print_json(data)
        return
    built = table()
    for one in built if isinstance(built, list) else [built]:
        print_table(one, target)


def timestamp(value: datetime) -> str:
    """An instant for people and machines alike: ISO 8601, to the second."""
    return value.replace(microsecond=0).isoformat()
