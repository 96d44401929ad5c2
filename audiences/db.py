"""The database engine and sessions, from LOYALFLOW_DATABASE_URL (default: a SQLite file here)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from audiences.errors import DatabaseUnavailable, DatabaseURLInvalid
from audiences.settings import database_settings

SUPPORTED_BACKENDS = ("sqlite", "postgresql")

# Whether make_engine may create a missing SQLite file. The CLI turns it off for the length of a
# command, so a read-only command (`journeys`, `report`, ...) never leaves an empty loyalflow.db
# behind; the commands that build a database (`db upgrade`, `demo-data`, `demo`) ask for it.
_create_missing_sqlite = True


class DatabaseMissing(DatabaseUnavailable):
    """A SQLite file that does not exist, where the command would only read."""


def set_create_missing(flag: bool) -> bool:
    """Allow or refuse creating a missing SQLite file by default; returns the previous setting."""
    global _create_missing_sqlite
    previous, _create_missing_sqlite = _create_missing_sqlite, flag
    return previous


def _sqlite_file(url: URL) -> Path | None:
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def safe_url(url: str | URL) -> str:
    """The URL with its password masked, fit for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def parse_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseURLInvalid(
            f"LOYALFLOW_DATABASE_URL is not a database URL: {url!r} "
            "(expected e.g. sqlite:///loyalflow.db or postgresql+psycopg://user@host/db)"
        ) from None
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        raise DatabaseURLInvalid(
            f"unsupported database {parsed.get_backend_name()!r} in {safe_url(parsed)}; "
            f"loyalflow supports {', '.join(SUPPORTED_BACKENDS)}"
        )
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3 is the driver we ship
    return parsed


# SQLite's page cache per connection, in KiB. It also bounds the sorter and the ephemeral tables of
# window functions before they spill to temporary files, so it sets the memory of win-back's RFM
# enrollment: at 100,000 members 128 MiB took that statement's peak RSS from 116 to 329 MiB, 8 MiB to
# 165 MiB, in the same time (the operating system's file cache keeps the database pages warm anyway).
SQLITE_CACHE_KIB = 8_192


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, cache_kib: int = SQLITE_CACHE_KIB) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
    # temp_store stays FILE: win-back's RFM window sorts at 1M members would otherwise hold ~900 MiB
    cursor.close()


def make_engine(url: str | None = None, *, check: bool = True, create: bool | None = None,
                sqlite_cache_kib: int = SQLITE_CACHE_KIB, **kwargs: Any) -> Engine:
    """An engine for `url` (default: the settings), checked to be reachable when `check` is set.

    `create`: whether a missing SQLite file may be created (default: see set_create_missing).
    `sqlite_cache_kib`: SQLite's page cache (and sort memory) per connection."""
    settings = database_settings()
    parsed = parse_url(url or settings.database_url)
    path = _sqlite_file(parsed)
    if path is not None and not path.exists() and not (_create_missing_sqlite if create is None else create):
        raise DatabaseMissing(
            f"no database at {safe_url(parsed)}: run `loyalflow db upgrade` first (an empty schema) or "
            "`loyalflow demo` (a demo database), or set LOYALFLOW_DATABASE_URL")
    # LOYALFLOW_DATABASE_ECHO logs every statement for debugging, never its parameters (member data)
    options: dict[str, Any] = {"echo": settings.database_echo, "hide_parameters": True, "future": True}
    if parsed.get_backend_name() == "sqlite":
        options["connect_args"] = {"timeout": 30}
    else:
        options["pool_pre_ping"] = True
        options["connect_args"] = {"connect_timeout": 5}
    options.update(kwargs)
    try:
        engine = create_engine(parsed, **options)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise DatabaseURLInvalid(f"cannot use database URL {safe_url(parsed)}: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect",
                     lambda dbapi, record: _sqlite_pragmas(dbapi, record, cache_kib=sqlite_cache_kib))
    if check:
        ping(engine)
    return engine


def ping(engine: Engine) -> None:
    """Connect once; on a SQLite file also switch it to WAL so readers and a writer coexist."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise DatabaseUnavailable(f"cannot reach the database at {safe_url(engine.url)}: {reason}") from None


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with session_factory(engine)() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
