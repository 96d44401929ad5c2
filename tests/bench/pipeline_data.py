"""Demo data for the pipeline benchmark, generated once per (members, seed) and cached.

Generating 1,000,000 members takes about two minutes, so the benchmark keeps a pristine migrated
SQLite file per size under bench-results/ and copies it for every run (a run changes the data:
enrollments, ledger rows). PostgreSQL has no such cache: it is loaded from the SQLite copy.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Engine, MetaData, insert, select, text
from sqlalchemy.orm import Session

from audiences.db import make_engine
from audiences.demo import generate
from flows import migrate
from flows.demo import seed_consent

AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)
CACHE = Path("bench-results") / "data"


def cached_sqlite(members: int, seed: int, cache: Path = CACHE, log: bool = True) -> Path:
    """A migrated SQLite file with demo data and marketing opt-ins; made on first use."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"demo-{members}-seed{seed}-{AS_OF.date()}.db"
    if path.exists():
        return path
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    started = time.perf_counter()
    engine = make_engine(f"sqlite:///{partial}")
    migrate.upgrade(engine)
    generate(engine, members, seed, AS_OF)
    seed_consent(engine)
    engine.dispose()
    partial.rename(path)
    if log:
        print(f"  generated {members:,} members into {path} in {time.perf_counter() - started:.0f} s", flush=True)
    return path


def fresh_copy(source: Path, folder: Path) -> Path:
    """A private copy of the cached file for one run, migrated to the current schema (the cache may be
    older than a migration added since; adding a column is cheap even at 1,000,000 members)."""
    return copy_migrated(source, folder / source.name)


def copy_migrated(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    engine = make_engine(f"sqlite:///{target}")
    migrate.upgrade(engine)
    engine.dispose()
    return target


def copy_to(source: Engine, target: Engine, batch: int = 20_000) -> None:
    """Copy every loyalty row from SQLite into a migrated, empty database (PostgreSQL)."""
    meta = MetaData()
    meta.reflect(source)
    wanted = _target_tables(target)
    with source.connect() as src, Session(target) as dst:
        for table in meta.sorted_tables:
            if table.name.startswith("alembic") or table.name not in wanted:
                continue
            rows = src.execute(select(table)).mappings()
            chunk: list[dict[str, object]] = []
            for row in rows:
                chunk.append(dict(row))
                if len(chunk) == batch:
                    dst.execute(insert(table), chunk)
                    chunk = []
            if chunk:
                dst.execute(insert(table), chunk)
        dst.commit()
    _reset_sequences(target, meta)


def _target_tables(engine: Engine) -> set[str]:
    meta = MetaData()
    meta.reflect(engine)
    return set(meta.tables)


def _reset_sequences(engine: Engine, meta: MetaData) -> None:
    from sqlalchemy import text

    wanted = _target_tables(engine)
    with engine.begin() as conn:
        for table in meta.sorted_tables:
            if "id" in table.c and table.name in wanted and not table.name.startswith("alembic"):
                conn.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"))


if __name__ == "__main__":
    import sys

    for n in (int(a) for a in sys.argv[1:]):
        cached_sqlite(n, 1)


@contextmanager
def loaded_postgres(source: Path) -> Iterator[tuple[str, float] | None]:
    """A throwaway PostgreSQL on 127.0.0.1 holding `source`'s rows: (its URL, load seconds), or None
    when this machine has no PostgreSQL server. After the load, VACUUM ANALYZE: what autovacuum keeps a
    production database at (planner statistics, and a visibility map for index-only scans)."""
    from tests.support.postgres import start_postgres

    server = start_postgres()
    if server is None:
        yield None
        return
    try:
        admin = make_engine(server.admin_url)
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("CREATE DATABASE bench"))
        admin.dispose()
        url = server.url("bench")
        target, origin = make_engine(url), make_engine(f"sqlite:///{source}")
        migrate.upgrade(target)
        started = time.perf_counter()
        copy_to(origin, target)
        with target.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        load_s = time.perf_counter() - started
        origin.dispose()
        target.dispose()
        yield url, load_s
    finally:
        server.stop()
