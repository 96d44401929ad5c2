"""A list of ids as a query condition: one parameter, not one per id.

A chunk's 5,000 ids as an IN list are 5,000 bound parameters, each named, typed, rendered into the
statement by SQLAlchemy and parsed by the database (6 ms of client CPU a statement on SQLite, and
a default SQLite build refuses more than 32,766). On PostgreSQL `column = ANY(:ids)` is one array; on SQLite
`column IN (SELECT value FROM json_each(:ids))` is one JSON text, searched by the column's index.
Used by every per-chunk query of the engine, the ledger and the gate.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Integer, String, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session


def on_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def id_in(session: Session, column: Any, ids: Iterable[int]) -> ColumnElement[bool]:
    """`column IN ids`: on PostgreSQL `column = ANY(:ids)`, on SQLite a JSON array through json_each."""
    return _one_parameter(session, column, [int(i) for i in ids], Integer)


def text_in(session: Session, column: Any, values: Iterable[str]) -> ColumnElement[bool]:
    """The same for text values (addresses)."""
    return _one_parameter(session, column, [str(v) for v in values], String)


def _one_parameter(session: Session, column: Any, values: list[Any], element: Any) -> ColumnElement[bool]:
    if on_postgresql(session):
        return column == any_(bindparam(None, values, type_=ARRAY(element)))  # type: ignore[no-any-return]
    array = func.json_each(bindparam(None, json.dumps(values), type_=String)).table_valued("value")
    return column.in_(select(array.c.value))  # type: ignore[no-any-return]
