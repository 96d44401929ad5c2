"""Database faults on a real PostgreSQL: the engine's connections are terminated
(pg_terminate_backend from an admin connection) mid-run. The run fails with a database error
instead of carrying on half-blind; resumed runs finish the work; nothing is sent twice."""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker

from channels.adapters.base import DeliveryResult, OutgoingMessage
from journeys.engine import tick
from journeys.registry import get_journey
from journeys.services import default_services
from tests.journeys.recording import RecordingAdapter
from tests.reliability.support import LEASE_PLUS, NOW, populate, reconcile

pytestmark = pytest.mark.postgres


def _admin(postgres_server: object) -> Engine:
    url = postgres_server if isinstance(postgres_server, str) else postgres_server.admin_url  # type: ignore[attr-defined]
    return create_engine(url, isolation_level="AUTOCOMMIT")


def terminate(admin: Engine, database: str) -> int:
    """Drop every connection to `database` (the server side of a network cut or a failover)."""
    with admin.connect() as conn:
        return len(conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": database}).all())


class CuttingAdapter(RecordingAdapter):
    """Accepts messages; on its `cut_on`-th call the database connections drop while the provider
    has the batch: the engine cannot record the outcome."""

    def __init__(self, admin: Engine, database: str, cut_on: int) -> None:
        super().__init__()
        self.admin, self.database, self.cut_on = admin, database, cut_on

    def send(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        results = super().send(messages)
        if self.calls == self.cut_on:
            terminate(self.admin, self.database)
        return results


def test_connection_dropped_after_the_provider_took_a_batch(postgres_engine: Engine, postgres_server: object) -> None:
    """The hand-over was committed before the provider call, so the outcome is recorded on a
    fresh connection (pool pre-ping): the run carries on and the ledger matches the provider."""
    populate(postgres_engine, 200)
    admin = _admin(postgres_server)
    adapter = CuttingAdapter(admin, str(postgres_engine.url.database), cut_on=2)
    factory = sessionmaker(postgres_engine, expire_on_commit=False)
    tick(factory, get_journey("welcome"), NOW, default_services(adapters={"email": adapter}), chunk_size=50)
    rec = reconcile(postgres_engine, adapter.ledger_ids())
    admin.dispose()
    assert adapter.calls == 4
    assert rec.duplicates == 0 and rec.sent_not_received == 0 and rec.received_not_sent == 0
    assert rec.ledger == {"sent": 200} and rec.open_rows == 0


def test_connection_dropped_inside_a_transaction_fails_the_run_then_resumes(
        postgres_engine: Engine, postgres_server: object) -> None:
    """Cut while the gate reads consent in an open transaction: the run stops with the database
    error (no later batch goes out), the rows it reserved stay reserved, a resumed run sends them once."""
    populate(postgres_engine, 200)
    admin = _admin(postgres_server)
    adapter = RecordingAdapter()
    services = default_services(adapters={"email": adapter})
    real_gate, calls = services.gate, [0]

    def cut_gate(session, now, candidates):  # type: ignore[no-untyped-def]
        calls[0] += 1
        if calls[0] == 3:
            session.execute(text("SELECT 1"))  # the transaction is open on this connection
            terminate(admin, str(postgres_engine.url.database))
        return real_gate(session, now, candidates)

    services.gate = cut_gate
    factory = sessionmaker(postgres_engine, expire_on_commit=False)
    with pytest.raises(DBAPIError):
        tick(factory, get_journey("welcome"), NOW, services, chunk_size=50)
    rec = reconcile(postgres_engine, adapter.ledger_ids())
    assert rec.ledger == {"sent": 100, "reserved": 50} and len(adapter.ledger_ids()) == 100
    services.gate = real_gate
    tick(factory, get_journey("welcome"), NOW + LEASE_PLUS, services, chunk_size=50)
    rec = reconcile(postgres_engine, adapter.ledger_ids())
    admin.dispose()
    assert rec.duplicates == 0 and rec.sent_not_received == 0 and rec.received_not_sent == 0
    assert rec.ledger == {"sent": 200} and rec.open_rows == 0


def test_connections_dropped_at_random_moments(postgres_engine: Engine, postgres_server: object) -> None:
    members = 1500
    populate(postgres_engine, members)
    admin = _admin(postgres_server)
    database = str(postgres_engine.url.database)
    adapter = RecordingAdapter()
    factory = sessionmaker(postgres_engine, expire_on_commit=False)
    services = default_services(adapters={"email": adapter})
    rng = random.Random(11)
    stop, cuts = threading.Event(), [0]

    def cutter() -> None:
        while not stop.wait(rng.uniform(0.05, 0.4)):
            cuts[0] += terminate(admin, database) > 0

    thread = threading.Thread(target=cutter, daemon=True)
    thread.start()
    failures, runs = 0, 0
    try:
        while runs < 60:
            runs += 1
            try:
                tick(factory, get_journey("welcome"), NOW + LEASE_PLUS * runs, services, chunk_size=50)
                settled = reconcile(postgres_engine, []).open_rows == 0  # the cutter may hit this check too
            except DBAPIError:
                failures += 1
                continue
            if settled and failures >= 3:
                break
    finally:
        stop.set()
        thread.join()
    tick(factory, get_journey("welcome"), NOW + LEASE_PLUS * (runs + 1), services, chunk_size=50)
    rec = reconcile(postgres_engine, adapter.ledger_ids())
    admin.dispose()
    print(f"\ndatabase faults: members={members} cuts={cuts[0]} failed_runs={failures} runs={runs + 1} {rec.figures()}")
    assert failures >= 3, "the cuts never hit a run"
    assert rec.duplicates == 0 and rec.sent_not_received == 0 and rec.received_not_sent == 0
    assert rec.enrollments == members and rec.missing_rows == 0 and rec.open_rows == 0
    assert set(rec.reasons) <= {"outcome_unknown"}
    assert rec.ledger["sent"] + rec.ledger["failed"] == members
