"""A real outage between the scheduler and PostgreSQL (a proxy taken down and brought back): a
scheduler started while the database is unreachable waits and starts, and a pass that fails while
it is down is retried within seconds, without waiting for the next minute."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from audiences.db import make_engine
from flows import scheduler as embedded
from flows.migrate import require_current
from journeys.registry import journeys
from journeys.services import services_for
from tests.audiences import builders as b
from tests.flows.tcp_proxy import TcpProxy
from tests.journeys.recording import RecordingAdapter


def wait_for(predicate, seconds: float = 180) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.mark.postgres
@pytest.mark.slow
def test_scheduler_rides_out_a_database_outage(postgres_engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="loyalflow.scheduler")
    proxy = TcpProxy(postgres_engine.url.host or "127.0.0.1", int(postgres_engine.url.port or 5432))
    url = postgres_engine.url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    rec = RecordingAdapter()
    services = services_for(rec)
    runners: list[embedded.PassRunner] = []

    def runner(engine: Engine) -> embedded.PassRunner:
        runners.append(embedded.PassRunner(sessionmaker(engine, expire_on_commit=False), journeys(), services,
                                           probes=[], retry_seconds=(0.2, 0.5)))
        return runners[-1]

    waits: list[str] = []
    stopped = threading.Event()
    started: list[object] = []

    def run() -> None:
        started.append(embedded.start_when_reachable(lambda: require_current(make_engine(url)), journeys(), stopped,
                                                     retry_seconds=(0.2, 0.5), on_wait=lambda r, d: waits.append(r),
                                                     runner=runner))

    thread = threading.Thread(target=run)
    thread.start()  # the database is unreachable: nothing listens on the proxy's port yet
    try:
        wait_for(lambda: len(waits) >= 3)
        assert not started and all("cannot reach the database" in w for w in waits)
        proxy.up()
        thread.join(180)
        assert started and started[0] is not None
        wait_for(lambda: runners[0].passes >= 1)  # the catch-up pass at start

        proxy.down()  # the database goes away while the scheduler runs
        # a member signs up meanwhile (written straight to the server, not through the proxy)
        with Session(postgres_engine, expire_on_commit=False) as s:
            b.tiers(s)
            b.member(s, 1, enrolled_at=datetime.now(timezone.utc) - timedelta(minutes=5))
            s.commit()
        embedded.wake()
        wait_for(lambda: runners[0].failures >= 2)  # failed, retried, failed again: all within seconds
        proxy.up()
        wait_for(lambda: runners[0].failures == 0)
        assert runners[0].passes >= 2
    finally:
        stopped.set()
        if not proxy.is_up:
            proxy.up()  # release the scheduler lock through it
        thread.join(60)
        if started and started[0] is not None:
            embedded.stop(*started[0])  # type: ignore[misc]
        proxy.down()
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("pass failed (database error:") for m in messages), messages
    assert any(m.startswith("pass succeeded after") for m in messages), messages
    assert not any("@example.com" in m for m in messages)  # no personal data in the log
