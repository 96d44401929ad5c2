"""Run locks in the database: two runs of the same journey never overlap, whatever schedules them.

A lock is a row; taking it is one conditional UPDATE (free, or expired), so it works the same on
SQLite and PostgreSQL, across processes and machines, with or without a Prefect server. An
expiry bounds how long a crashed holder blocks the next run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from audiences.errors import LoyalflowError
from journeys.models import RunLock


class LockHeld(LoyalflowError):
    """Another run holds the lock (e.g. the same journey is already running)."""


def try_acquire(session: Session, name: str, owner: str, now: datetime, ttl: timedelta) -> bool:
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(RunLock)
    session.execute(insert.values(name=name, owner=None, expires_at=None).on_conflict_do_nothing(index_elements=["name"]))
    taken = session.execute(
        update(RunLock).where(RunLock.name == name,
                              or_(RunLock.owner.is_(None), RunLock.expires_at < now, RunLock.owner == owner))
        .values(owner=owner, expires_at=now + ttl).returning(RunLock.name)).first()
    session.commit()
    return taken is not None


def release(session: Session, name: str, owner: str) -> None:
    session.execute(update(RunLock).where(RunLock.name == name, RunLock.owner == owner).values(owner=None, expires_at=None))
    session.commit()


@contextmanager
def held(engine: Engine, name: str, owner: str, now: datetime, ttl: timedelta = timedelta(hours=1)) -> Iterator[None]:
    with Session(engine) as session:
        if not try_acquire(session, name, owner, now, ttl):
            raise LockHeld(f"{name} is already running elsewhere; this run did nothing")
    try:
        yield
    finally:
        with Session(engine) as session:
            release(session, name, owner)
