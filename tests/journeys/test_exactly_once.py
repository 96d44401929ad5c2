"""Exactly once: re-runs, racing workers (threads on SQLite, processes on PostgreSQL) and crashes
injected around the hand-over to the provider never send a step twice and never lose one."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from journeys.engine import advance, enroll_journey, tick
from journeys.models import Enrollment, Send, SendStatus
from journeys.registry import get_journey
from journeys.services import Services, services_for
from tests.audiences import builders as b
from tests.journeys.recording import Crash, RecordingAdapter

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc)  # 10:00 in New York: no quiet hours


def populate(engine: Engine, members: int = 120) -> None:
    b.reset_ids()
    with Session(engine, expire_on_commit=False) as s:
        tiers = b.tiers(s)
        for i in range(1, members + 1):
            m = b.member(s, i, enrolled_at=NOW - timedelta(hours=i % 60 + 1), tier=tiers["bronze"])
            m.phone = "+12015550123"
        s.commit()


def services_with(adapter: RecordingAdapter) -> Services:
    return services_for(adapter)


def ledger(engine: Engine) -> Counter[str]:
    with Session(engine) as s:
        return Counter(dict(s.execute(select(Send.status, func.count()).group_by(Send.status)).all()))


def assert_each_once(adapter_ids: list[int], engine: Engine, expected: int) -> None:
    assert len(adapter_ids) == len(set(adapter_ids)), "a ledger row was sent twice"
    with Session(engine) as s:
        sent = s.scalars(select(Send.id).where(Send.status == SendStatus.sent)).all()
        pairs = s.execute(select(Send.enrollment_id, Send.step_key)).all()
    assert len(pairs) == len(set(pairs))
    assert sorted(adapter_ids) == sorted(sent), "the provider and the ledger disagree"
    assert len(sent) == expected, "a due step was lost"


def test_the_same_tick_twice_sends_once(sqlite_engine: Engine) -> None:
    populate(sqlite_engine)
    rec = RecordingAdapter()
    factory = sessionmaker(sqlite_engine, expire_on_commit=False)
    first = tick(factory, get_journey("welcome"), NOW, services_with(rec))
    second = tick(factory, get_journey("welcome"), NOW, services_with(rec))
    assert first.enrolled == 120 and first.sent["email"] == 120
    assert second.enrolled == 0 and second.messages == 0
    assert_each_once(rec.ledger_ids(), sqlite_engine, 120)


def test_racing_threads_on_sqlite(sqlite_engine: Engine) -> None:
    populate(sqlite_engine, 400)
    factory = sessionmaker(sqlite_engine, expire_on_commit=False)
    journey = get_journey("welcome")
    enroll_journey(factory, journey, NOW)
    rec = RecordingAdapter()
    services = services_with(rec)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            advance(factory, journey, NOW, services, chunk_size=25, worker=f"thread-{n}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert_each_once(rec.ledger_ids(), sqlite_engine, _welcome_count(sqlite_engine))


def _welcome_count(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(Enrollment).where(Enrollment.journey == "welcome")) or 0)


def _worker(url: str, out: str, n: int) -> None:
    from audiences.db import make_engine

    engine = make_engine(url)
    services = services_with(RecordingAdapter(Path(out)))
    advance(sessionmaker(engine, expire_on_commit=False), get_journey("welcome"), NOW, services,
            chunk_size=20, worker=f"proc-{n}")


@pytest.mark.postgres
def test_racing_processes_on_postgres(postgres_engine: Engine, tmp_path: Path) -> None:
    populate(postgres_engine, 600)
    factory = sessionmaker(postgres_engine, expire_on_commit=False)
    enroll_journey(factory, get_journey("welcome"), NOW)
    out = tmp_path / "received.txt"
    url = postgres_engine.url.render_as_string(hide_password=False)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(url, str(out), n)) for n in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert all(p.exitcode == 0 for p in procs)
    received = [int(line) for line in out.read_text().split()]
    assert_each_once(received, postgres_engine, _welcome_count(postgres_engine))


def test_crash_between_reserve_and_send_loses_nothing(sqlite_engine: Engine) -> None:
    populate(sqlite_engine)
    factory = sessionmaker(sqlite_engine, expire_on_commit=False)
    rec = RecordingAdapter()
    services = services_with(rec)
    real_gate = services.gate
    calls = {"n": 0}

    def crashing_gate(session, now, candidates):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:  # the second chunk: its rows are reserved, nothing handed over yet
            raise Crash("killed after reserve")
        return real_gate(session, now, candidates)

    services.gate = crashing_gate
    with pytest.raises(Crash):
        tick(factory, get_journey("welcome"), NOW, services, chunk_size=25)
    assert ledger(sqlite_engine)[SendStatus.reserved] == 25
    services.gate = real_gate
    later = NOW + timedelta(minutes=20)  # the crashed worker's lease has run out
    tick(factory, get_journey("welcome"), later, services, chunk_size=25)
    assert_each_once(rec.ledger_ids(), sqlite_engine, 120)


def test_crash_inside_the_provider_call_never_resends(sqlite_engine: Engine) -> None:
    populate(sqlite_engine)
    factory = sessionmaker(sqlite_engine, expire_on_commit=False)
    rec = RecordingAdapter(fail_on_call=2)
    with pytest.raises(Crash):
        tick(factory, get_journey("welcome"), NOW, services_with(rec), chunk_size=25)
    assert ledger(sqlite_engine)[SendStatus.sending] == 25  # handed over, outcome unknown
    stats = tick(factory, get_journey("welcome"), NOW + timedelta(minutes=20), services_with(rec), chunk_size=25)
    assert stats.failed["outcome_unknown"] == 25
    counts = ledger(sqlite_engine)
    assert counts[SendStatus.sent] == 95 and counts[SendStatus.failed] == 25 and counts[SendStatus.sending] == 0
    assert len(rec.ledger_ids()) == len(set(rec.ledger_ids())) == 95


class RefusingAdapter(RecordingAdapter):
    """Accepts the first message of each batch, then the provider answers 401."""

    def send(self, messages):  # type: ignore[no-untyped-def]
        from channels.errors import ProviderConfigError

        accepted = super().send(messages[:1])
        raise ProviderConfigError("recorder", 401, "bad key", results=accepted,
                                  unsent=[m.ledger_id for m in messages[1:]])


def test_a_configuration_failure_stops_the_run_and_loses_nothing(sqlite_engine: Engine) -> None:
    from channels.errors import ProviderConfigError

    populate(sqlite_engine, 30)
    factory = sessionmaker(sqlite_engine, expire_on_commit=False)
    refusing = RefusingAdapter()
    with pytest.raises(ProviderConfigError):
        tick(factory, get_journey("welcome"), NOW, services_with(refusing))
    counts = ledger(sqlite_engine)
    assert counts[SendStatus.sent] == 1 and counts[SendStatus.reserved] == 29 and counts[SendStatus.sending] == 0
    fixed = RecordingAdapter()  # credentials fixed: the next run sends the rest, once
    tick(factory, get_journey("welcome"), NOW + timedelta(minutes=20), services_with(fixed))
    assert sorted(refusing.ledger_ids() + fixed.ledger_ids()) == sorted(set(refusing.ledger_ids() + fixed.ledger_ids()))
    assert len(fixed.ledger_ids()) == 29 and ledger(sqlite_engine)[SendStatus.sent] == 30
