"""A list of ids as a query condition: an IN list, or on PostgreSQL one array parameter.

A chunk's 5,000 ids as an IN list are 5,000 bound parameters, each named, typed and sent, and parsed
by the server; on PostgreSQL `column = ANY(:ids)` is one array. SQLite keeps the IN list (it has no
arrays, and runs in the process). Used by every per-chunk query of the engine, the ledger and the gate.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Integer, String, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session


def on_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def id_in(session: Session, column: Any, ids: Iterable[int]) -> ColumnElement[bool]:
    """`column IN ids`; on PostgreSQL `column = ANY(:ids)`."""
    if on_postgresql(session):
        return column == any_(bindparam(None, list(ids), type_=ARRAY(Integer)))  # type: ignore[no-any-return]
    return column.in_(list(ids))  # type: ignore[no-any-return]


def text_in(session: Session, column: Any, values: Iterable[str]) -> ColumnElement[bool]:
    """The same for text values (addresses)."""
    if on_postgresql(session):
        return column == any_(bindparam(None, list(values), type_=ARRAY(String)))  # type: ignore[no-any-return]
    return column.in_(list(values))  # type: ignore[no-any-return]
