"""Consumers read events by id, so an id must never become visible after a larger one: with
several clients posting at once while passes run, every accepted event is enrolled exactly once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from audiences.events import ingest
from journeys.models import Enrollment
from journeys.registry import get_journey
from journeys.triggers import enroll_triggered
from tests.events.events_data import NOW, add_members, factory, purchase

JOURNEY = get_journey("first_purchase")


@pytest.mark.slow
def test_concurrent_writers_and_passes_enroll_every_accepted_event_once(engine: Engine) -> None:
    add_members(engine, 50)
    sessions = factory(engine)
    done = threading.Event()
    accepted: list[str] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        for b in range(25):
            batch = [purchase(f"w{w}-{b}-{i}", (w * 7 + i) % 50 + 1, NOW - timedelta(seconds=i)) for i in range(8)]
            with sessions() as s:
                results = ingest(s, batch + batch[:2], NOW)  # two repeats in every batch
                s.commit()
            with lock:
                accepted.extend(batch[r.index]["idempotency_key"] for r in results if r.status == "accepted")

    def passes() -> None:
        while not done.is_set():
            enroll_triggered(sessions, [JOURNEY], NOW)

    consumer = threading.Thread(target=passes)
    consumer.start()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(writer, range(4)))
    done.set()
    consumer.join()
    enroll_triggered(sessions, [JOURNEY], NOW)  # the last events, after the writers stopped
    with Session(engine) as s:
        keys = list(s.scalars(select(Enrollment.occurrence_key)))
    assert len(accepted) == 4 * 25 * 8
    assert sorted(keys) == sorted(accepted)  # none skipped by the cursor, none twice


def test_an_event_committed_late_with_a_smaller_id_is_not_skipped(engine: Engine) -> None:
    """Writer A holds its transaction open after inserting; writer B then posts and a pass runs.
    Were B's larger ids visible before A's commit, the pass would move the cursor past A's events."""
    add_members(engine, 2)
    sessions = factory(engine)
    slow = sessions()
    assert [r.status for r in ingest(slow, [purchase("a1", 1, NOW)], NOW)] == ["accepted"]  # not committed yet

    def writer_b() -> None:
        with sessions() as s:
            ingest(s, [purchase("b1", 2, NOW)], NOW)
            s.commit()

    b = threading.Thread(target=writer_b)
    b.start()
    b.join(timeout=3)  # B waits for A (the ingest lock); without it, B would be done by now
    enroll_triggered(sessions, [JOURNEY], NOW)  # a pass while A is still open
    slow.commit()
    slow.close()
    b.join()
    enroll_triggered(sessions, [JOURNEY], NOW + timedelta(seconds=1))
    with Session(engine) as s:
        assert sorted(s.scalars(select(Enrollment.occurrence_key))) == ["a1", "b1"]
