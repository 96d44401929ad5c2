"""Bulk writing of generated columns: raw DBAPI executemany on SQLite, COPY on PostgreSQL.

The ORM would spend more time building objects than SQLite spends storing rows, so chunks go
straight to the driver. Instants are written as SQLAlchemy's own text/timestamp form of naive
UTC, so rows written here read back through the models exactly like rows the ORM wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np
from sqlalchemy import Connection, text

from audiences.demo.timeline import format_instants

DEMO_TABLES = ("points_ledger", "tier_changes", "purchases", "device_tokens", "members", "program_updates",
               "staff", "stores", "tiers")
"""In an order that deletes children before parents."""


class RowWriter(Protocol):
    def write(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None: ...


class SqliteWriter:
    def __init__(self, connection: Connection) -> None:
        self._dbapi = connection.connection.driver_connection

    def write(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        marks = ", ".join("?" for _ in columns)
        cursor = self._dbapi.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
        finally:
            cursor.close()


class PostgresWriter:
    def __init__(self, connection: Connection) -> None:
        self._dbapi = connection.connection.driver_connection

    def write(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        with self._dbapi.cursor() as cursor:  # type: ignore[union-attr]
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)


BULK_PRAGMAS = {"foreign_keys": "OFF", "synchronous": "OFF", "cache_size": "-262144"}
"""For the generator's own SQLite connection only, restored afterwards. Foreign keys are not checked
row by row because the generator assigns every id itself (the tests run `PRAGMA foreign_key_check`);
no fsync, because a half-written demo database is simply generated again; a 256 MiB page cache
keeps the growing indexes in memory."""


@contextmanager
def bulk_load_settings(connection: Connection) -> Iterator[None]:
    if connection.dialect.name != "sqlite":
        yield
        return
    dbapi = connection.connection.driver_connection
    saved = {name: dbapi.execute(f"PRAGMA {name}").fetchone()[0] for name in BULK_PRAGMAS}  # type: ignore[union-attr]
    for name, value in BULK_PRAGMAS.items():
        dbapi.execute(f"PRAGMA {name}={value}")  # type: ignore[union-attr]
    try:
        yield
    finally:
        if connection.in_transaction():
            connection.rollback()
        for name, value in saved.items():
            dbapi.execute(f"PRAGMA {name}={value}")  # type: ignore[union-attr]


def writer_for(connection: Connection) -> RowWriter:
    if connection.dialect.name == "sqlite":
        return SqliteWriter(connection)
    if connection.dialect.name == "postgresql":
        return PostgresWriter(connection)
    raise NotImplementedError(f"demo data cannot be written to {connection.dialect.name}")


def instants(seconds: np.ndarray) -> list[str | None]:
    """Epoch seconds -> stored form; negative means NULL."""
    present = seconds >= 0
    if present.all():
        return format_instants(seconds)  # type: ignore[return-value]
    out = np.full(len(seconds), None, dtype=object)
    out[present] = format_instants(seconds[present])
    return out.tolist()  # type: ignore[no-any-return]


def nullable_ids(values: np.ndarray) -> list[int | None]:
    """Negative means NULL."""
    return [None if v < 0 else v for v in values.tolist()]


def first_nonempty(connection: Connection) -> str | None:
    for table in ("members", *(t for t in DEMO_TABLES if t != "members")):
        if connection.execute(text(f"SELECT 1 FROM {table} LIMIT 1")).first() is not None:
            return table
    return None


def delete_demo_rows(connection: Connection) -> None:
    for table in DEMO_TABLES:
        connection.execute(text(f"DELETE FROM {table}"))


def advance_sequences(connection: Connection) -> None:
    """Rows came with explicit ids; on PostgreSQL move each id sequence past them."""
    if connection.dialect.name != "postgresql":
        return
    for table in DEMO_TABLES:
        connection.execute(text(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) "
            f"FROM {table}"))
