"""Per-chunk writes of thousands of rows straight to the driver, and id lists as one parameter.

SQLAlchemy's executemany builds and type-processes a parameter dict per row (about as much CPU as
the send itself at 5,000 rows a chunk); these statements are fixed, so the rows go as tuples in
the driver's own parameter style. Instants are written as `UTCDateTime` writes them: naive UTC,
on SQLite in SQLAlchemy's text form (so comparisons with rows written the other way agree).

On PostgreSQL a chunk's rows go as one array per column (`unnest`): one statement and one round
trip per chunk instead of one per row, and `id = ANY(array)` instead of an IN list of 5,000 bound
parameters (each one named, typed and parsed). SQLite keeps its executemany and IN lists: it runs
in the process, so a statement costs no round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from audiences.id_lists import id_in, on_postgresql

__all__ = ["execute_many", "id_in", "instant_writer", "on_postgresql", "placeholder", "update_by_id"]


def placeholder(session: Session) -> str:
    return "?" if session.get_bind().dialect.paramstyle == "qmark" else "%s"


def instant_writer(session: Session) -> Any:
    """aware datetime | None -> what the column holds (see audiences.models.base.UTCDateTime)."""
    sqlite = session.get_bind().dialect.name == "sqlite"

    def write(value: datetime | None) -> Any:
        if value is None:
            return None
        zone = value.tzinfo
        if zone is None:
            raise ValueError(f"naive datetime {value.isoformat()} given where an aware instant is required")
        naive = (value if zone is UTC else value.astimezone(UTC)).replace(tzinfo=None)
        # SQLAlchemy's SQLite text form, "YYYY-MM-DD HH:MM:SS.ffffff" (isoformat: C, half the f-string's cost)
        return naive.isoformat(" ", "microseconds") if sqlite else naive

    return write


def execute_many(session: Session, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """`sql` written with `{p}` for each placeholder, run once per row in one executemany."""
    if rows:
        session.connection().exec_driver_sql(sql.format(p=placeholder(session)), list(rows))


def update_by_id(session: Session, table: str, columns: Sequence[tuple[str, str]], rows: Sequence[tuple[Any, ...]],
                 fixed: str = "", fixed_params: Sequence[Any] = (), where: str = "") -> None:
    """Set `columns` (name, PostgreSQL type) from each row `(value, ..., id)` on the row with that id.

    `fixed` is more of the SET list, written with `{p}` for its `fixed_params` (the same for every
    row); `where` a further condition on the target, written as `t.column`. PostgreSQL: one UPDATE
    .. FROM unnest(arrays); SQLite: one executemany."""
    if not rows:
        return
    extra = f", {fixed}" if fixed else ""
    if on_postgresql(session):
        names = [name for name, _ in columns]
        arrays = ", ".join(f"%s::{kind}[]" for _, kind in columns)
        sql = (f"UPDATE {table} AS t SET " + ", ".join(f"{n} = v.{n}" for n in names) + extra.format(p="%s")
               + f" FROM unnest({arrays}, %s::integer[]) AS v({', '.join(names)}, id) WHERE t.id = v.id"
               + (f" AND {where}" if where else ""))
        params = [*fixed_params, *([row[i] for row in rows] for i in range(len(columns))), [row[-1] for row in rows]]
        session.connection().exec_driver_sql(sql, tuple(params))
        return
    sql = (f"UPDATE {table} AS t SET " + ", ".join(f"{n} = ?" for n, _ in columns) + extra.format(p="?")
           + " WHERE t.id = ?" + (f" AND {where}" if where else ""))
    session.connection().exec_driver_sql(sql, [(*row[:-1], *fixed_params, row[-1]) for row in rows])
