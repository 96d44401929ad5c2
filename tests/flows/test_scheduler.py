"""The embedded scheduler keeps its jobs across a restart, runs one instance at a time, and never
runs a journey twice at once."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from flows import scheduler as embedded
from journeys.locks import LockHeld, held
from journeys.registry import journeys


def test_jobs_survive_a_restart(sqlite_engine: Engine) -> None:
    first = embedded.start(sqlite_engine, journeys())
    before = {j.id: (str(j.trigger), j.next_run_time) for j in first.get_jobs() if j.id.startswith("journey:")}
    embedded.stop(sqlite_engine, first)
    assert set(before) == {f"journey:{n}" for n in journeys()}

    reopened = embedded.build(sqlite_engine)  # a new process: nothing but the database
    reopened.start(paused=True)
    try:
        after = {j.id: (str(j.trigger), j.next_run_time) for j in reopened.get_jobs() if j.id.startswith("journey:")}
    finally:
        reopened.shutdown(wait=False)
    assert after == before


def test_job_defaults_coalesce_and_single_instance(sqlite_engine: Engine) -> None:
    scheduler = embedded.start(sqlite_engine, journeys())
    try:
        jobs = [j for j in scheduler.get_jobs() if j.id.startswith("journey:")]
        assert jobs and all(j.coalesce and j.max_instances == 1 for j in jobs)
        welcome = scheduler.get_job("journey:welcome")
        assert str(welcome.trigger) == "cron[month='*', day='*', day_of_week='*', hour='*', minute='0']"
    finally:
        embedded.stop(sqlite_engine, scheduler)


def test_only_one_scheduler_per_database(sqlite_engine: Engine) -> None:
    scheduler = embedded.start(sqlite_engine, journeys())
    try:
        with Session(sqlite_engine) as s:  # a second process on another host
            from journeys.locks import try_acquire

            assert not try_acquire(s, embedded.LOCK, "other-host:1", datetime.now(timezone.utc), timedelta(minutes=2))
        with pytest.raises(embedded.SchedulerAlreadyRunning):
            embedded.acquire(sqlite_engine, "other-host:1")
    finally:
        embedded.stop(sqlite_engine, scheduler)
    embedded.acquire(sqlite_engine, "other-host:1")  # free once stopped


def test_a_journey_never_runs_twice_at_once(sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two triggers of the same journey racing: the run lock lets exactly one through."""
    running, overlaps, ran = [0], [0], []
    lock = threading.Lock()

    def slow_tick(journey: str) -> None:
        with held(sqlite_engine, f"journey:{journey}", threading.current_thread().name, datetime.now(timezone.utc)):
            with lock:
                running[0] += 1
                overlaps[0] = max(overlaps[0], running[0])
            time.sleep(0.3)
            ran.append(journey)
            with lock:
                running[0] -= 1

    refused: list[BaseException] = []

    def worker() -> None:
        try:
            slow_tick("welcome")
        except LockHeld as exc:
            refused.append(exc)

    threads = [threading.Thread(target=worker, name=f"w{i}") for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps[0] == 1 and len(ran) == 1 and len(refused) == 2
