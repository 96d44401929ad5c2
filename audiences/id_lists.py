"""A list of ids as a query condition: one parameter, not one per id.

A chunk's 5,000 ids as an IN list are 5,000 bound parameters, each named, typed, rendered into the
statement by SQLAlchemy and parsed by the database (6 ms of client CPU a statement on SQLite, and
SQLite refuses more than 32,766). On PostgreSQL `column = ANY(:ids)` is one array; on SQLite
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
    """`column IN ids`; on PostgreSQL `column = ANY(:ids)`."""
    if on_postgresql(session):
        return column == any_(bindparam(None, list(ids), type_=ARRAY(Integer)))  # type: ignore[no-any-return]
    return column.in_(_json_values(json.dumps([int(i) for i in ids])))  # type: ignore[no-any-return]


def text_in(session: Session, column: Any, values: Iterable[str]) -> ColumnElement[bool]:
    """The same for text values (addresses)."""
    if on_postgresql(session):
        return column == any_(bindparam(None, list(values), type_=ARRAY(String)))  # type: ignore[no-any-return]
    return column.in_(_json_values(json.dumps([str(v) for v in values])))  # type: ignore[no-any-return]


def _json_values(array: str) -> Any:
    """SQLite: the values of a JSON array, as a subquery."""
    return select(func.json_each(bindparam(None, array, type_=String)).table_valued("value").c.value)
