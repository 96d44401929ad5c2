"""Time travel: run a journey tick by tick on a simulated clock over the current data, sending nothing.

The database is never changed: SQLite is copied (the backup API, consistent even while others
write) and the copy is thrown away; PostgreSQL runs inside one transaction, every engine commit
becoming a savepoint, rolled back at the end. Messages go to a dry-run adapter that accepts them
without sending, after the real consent checks and the real template rendering.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from croniter import croniter
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from audiences.db import make_engine
from channels.adapters.base import DeliveryResult, DeliveryStatus, OutgoingMessage
from journeys.dsl import Journey
from journeys.engine import SessionFactory, tick
from journeys.services import Services
from journeys.stats import TickStats


class DryRunAdapter:
    """Accepts every message and sends nothing; counts what would have gone."""

    provider = "dry-run"

    def __init__(self) -> None:
        self.count = 0

    def send(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        self.count += len(messages)
        return [DeliveryResult(m.ledger_id, DeliveryStatus.accepted, f"dry-run-{m.ledger_id}") for m in messages]


@contextmanager
def sandbox(engine: Engine) -> Iterator[SessionFactory]:
    """Sessions on a throwaway version of the database."""
    if engine.dialect.name == "sqlite":
        with tempfile.TemporaryDirectory(prefix="loyalflow-sim-") as folder:
            copy = Path(folder) / "simulation.db"
            source = sqlite3.connect(engine.url.database or ":memory:")
            target = sqlite3.connect(copy)
            with target:
                source.backup(target)
            source.close()
            target.close()
            sim_engine = make_engine(f"sqlite:///{copy}")
            try:
                yield sessionmaker(sim_engine, expire_on_commit=False)
            finally:
                sim_engine.dispose()
        return
    with engine.connect() as connection:
        outer = connection.begin()
        try:
            yield sessionmaker(bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint")
        finally:
            outer.rollback()


@dataclass
class Day:
    day: date
    stats: TickStats = field(default_factory=TickStats)

    def row(self) -> dict[str, Any]:
        s = self.stats
        return {"date": self.day.isoformat(), "enrolled": s.enrolled, "held_out": s.held_out,
                "sent": dict(sorted((k, v) for k, v in s.sent.items() if v)),
                "skipped": dict(sorted((k, v) for k, v in s.skipped.items() if v)),
                "failed": dict(sorted((k, v) for k, v in s.failed.items() if v)),
                "exited": dict(sorted((k, v) for k, v in s.exited.items() if v)),
                "completed": s.completed}


def tick_times(schedule: str, start: datetime, days: int) -> list[datetime]:
    end = start + timedelta(days=days)
    it = croniter(schedule, start - timedelta(seconds=1))
    out = []
    while (fire := it.get_next(datetime)) < end:
        out.append(fire)
    return out


def simulate(engine: Engine, journey: Journey, start: datetime, days: int,
             services_for: Callable[[DryRunAdapter], Services],
             on_tick: Callable[[datetime], None] | None = None) -> list[Day]:
    adapter = DryRunAdapter()
    services = services_for(adapter)
    by_day = {start.date() + timedelta(days=i): Day(start.date() + timedelta(days=i)) for i in range(days)}
    with sandbox(engine) as factory:
        for now in tick_times(journey.schedule, start, days):
            by_day[now.date()].stats.merge(tick(factory, journey, now, services))
            if on_tick:
                on_tick(now)
    return list(by_day.values())


__all__ = ["DryRunAdapter", "Day", "simulate", "sandbox", "tick_times"]
