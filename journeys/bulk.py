"""Per-chunk writes of thousands of rows straight to the DB-API's executemany.

SQLAlchemy's executemany builds and type-processes a parameter dict per row (about as much CPU as
the send itself at 5,000 rows a chunk); these statements are fixed, so the rows go as tuples in
the driver's own parameter style. Instants are written as `UTCDateTime` writes them: naive UTC,
on SQLite in SQLAlchemy's text form (so comparisons with rows written the other way agree).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session


def placeholder(session: Session) -> str:
    return "?" if session.get_bind().dialect.paramstyle == "qmark" else "%s"


def instant_writer(session: Session) -> Any:
    """aware datetime | None -> what the column holds (see audiences.models.base.UTCDateTime)."""
    sqlite = session.get_bind().dialect.name == "sqlite"

    def write(value: datetime | None) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given where an aware instant is required")
        naive = value.astimezone(UTC).replace(tzinfo=None)
        if not sqlite:
            return naive
        return (f"{naive.year:04d}-{naive.month:02d}-{naive.day:02d} "
                f"{naive.hour:02d}:{naive.minute:02d}:{naive.second:02d}.{naive.microsecond:06d}")

    return write


def execute_many(session: Session, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """`sql` written with `{p}` for each placeholder, run once per row in one executemany."""
    if rows:
        session.connection().exec_driver_sql(sql.format(p=placeholder(session)), list(rows))
