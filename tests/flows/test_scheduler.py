"""The embedded scheduler: jobs kept across a restart, one instance per database, cron read as cron
(Monday is Monday), and a runner that wakes on jobs, on `wake()` and on new events."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from croniter import croniter
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from flows import scheduler as embedded
from journeys.locks import LockHeld, held
from journeys.registry import journeys
from tests.audiences import builders as b

CRONS = ["0 7 * * 1", "0 9 * * 0", "0 9 * * 7", "*/15 8-18 * * 1-5", "0 0 1 * *", "0 12 * * */2",
         "30 6 * * 5-7", "0 3 * * sun,wed", "0 0 1 * 1", "0 10 13 * 5", "5 4 * * 0,6", "0 22 * * 1-5/2"]


def croniter_fires(expr: str, start: datetime, count: int) -> list[datetime]:
    it = croniter(expr, start - timedelta(seconds=1))
    return [it.get_next(datetime) for _ in range(count)]


def wait_for(predicate, seconds: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.mark.parametrize("expr", sorted({j.schedule for j in journeys().values() if j.schedule}) + CRONS)
def test_fire_times_equal_croniters(expr: str) -> None:
    trigger = embedded.cron_trigger(expr)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    expected = croniter_fires(expr, start, 400)
    got = embedded.fire_times(trigger, start, expected[-1] + timedelta(seconds=1))
    assert got == expected


def test_the_scheduler_jobs_fire_when_cron_says(sqlite_engine: Engine) -> None:
    """The triggers the scheduler stores (not just the helper): the Monday bulletin fires on Mondays."""
    scheduler = embedded.build(sqlite_engine)
    scheduler.start(paused=True)
    try:
        embedded.sync_jobs(scheduler, journeys())
        start = datetime(2026, 3, 1, tzinfo=timezone.utc)
        for job in scheduler.get_jobs():
            if job.id.startswith("journey:"):
                expected = croniter_fires(journeys()[job.name].schedule, start, 60)
                assert embedded.fire_times(job.trigger, start, expected[-1] + timedelta(seconds=1)) == expected
        bulletin = embedded.fire_times(scheduler.get_job("journey:staff_bulletin").trigger, start,
                                       start + timedelta(days=70))
        assert len(bulletin) == 10 and {f.strftime("%A %H:%M") for f in bulletin} == {"Monday 07:00"}
        minutes = embedded.fire_times(scheduler.get_job(embedded.PASS_JOB).trigger, start, start + timedelta(hours=2))
        assert minutes == [start + timedelta(minutes=i) for i in range(120)]
    finally:
        scheduler.shutdown(wait=False)


def test_a_cron_the_scheduler_cannot_follow_is_refused() -> None:
    with pytest.raises(embedded.UnsupportedCron, match="nth or last weekday"):
        embedded.cron_trigger("0 9 * * 1#2")
    with pytest.raises(embedded.UnsupportedCron, match="not a valid"):
        embedded.cron_trigger("0 25 * * *")


def test_jobs_survive_a_restart(sqlite_engine: Engine) -> None:
    first = embedded.start(sqlite_engine, journeys(), runner=idle_runner(sqlite_engine))
    before = {j.id: (str(j.trigger), j.next_run_time) for j in first.get_jobs() if j.id != "scheduler:lock"}
    embedded.stop(sqlite_engine, first)
    assert set(before) == {f"journey:{n}" for n, j in journeys().items() if j.schedule} | {embedded.PASS_JOB}

    reopened = embedded.build(sqlite_engine)  # a new process: nothing but the database
    reopened.start(paused=True)
    try:
        after = {j.id: (str(j.trigger), j.next_run_time) for j in reopened.get_jobs() if j.id != "scheduler:lock"}
    finally:
        reopened.shutdown(wait=False)
    assert after == before


def test_job_defaults_coalesce_and_single_instance(sqlite_engine: Engine) -> None:
    scheduler = embedded.start(sqlite_engine, journeys(), runner=idle_runner(sqlite_engine))
    try:
        jobs = scheduler.get_jobs()
        assert jobs and all(j.coalesce and j.max_instances == 1 for j in jobs)
        assert str(scheduler.get_job("journey:staff_bulletin").trigger) == \
            "cron[month='*', day='*', day_of_week='mon', hour='7', minute='0']"
        assert scheduler.get_job("scheduler:lock").executor == "lock"  # a long pass never starves the lock
    finally:
        embedded.stop(sqlite_engine, scheduler)


def test_only_one_scheduler_per_database(sqlite_engine: Engine) -> None:
    scheduler = embedded.start(sqlite_engine, journeys(), runner=idle_runner(sqlite_engine))
    try:
        with Session(sqlite_engine) as s:  # a second process on another host
            from journeys.locks import try_acquire

            assert not try_acquire(s, embedded.LOCK, "other-host:1", datetime.now(timezone.utc), timedelta(minutes=2))
        with pytest.raises(embedded.SchedulerAlreadyRunning):
            embedded.acquire(sqlite_engine, "other-host:1")
    finally:
        embedded.stop(sqlite_engine, scheduler)
    embedded.acquire(sqlite_engine, "other-host:1")  # free once stopped


def test_a_journey_never_runs_twice_at_once(sqlite_engine: Engine) -> None:
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


# -- the runner ---------------------------------------------------------------------------------

class CountingRunner(embedded.PassRunner):
    """The real runner loop; the pass itself only counts (and overlaps are detected)."""

    def __init__(self, *args, fail: int = 0, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.calls: list[datetime] = []
        self.active = 0
        self.max_active = 0
        self.fail = fail
        self._count_lock = threading.Lock()

    def run_once(self, now: datetime | None = None) -> None:
        with self._count_lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            time.sleep(0.02)
            if len(self.calls) < self.fail:
                self.calls.append(datetime.now(timezone.utc))
                raise RuntimeError("injected")
            self.calls.append(datetime.now(timezone.utc))
        finally:
            with self._count_lock:
                self.active -= 1


def idle_runner(engine: Engine) -> CountingRunner:
    return CountingRunner(sessionmaker(engine), {}, None, probes=[])  # type: ignore[arg-type]


def test_wake_and_jobs_run_passes_one_at_a_time(sqlite_engine: Engine) -> None:
    runner = CountingRunner(sessionmaker(sqlite_engine), {}, None, probes=[])  # type: ignore[arg-type]
    scheduler = embedded.start(sqlite_engine, journeys(), runner=runner)
    try:
        wait_for(lambda: len(runner.calls) >= 1)  # the catch-up pass at start
        for _ in range(50):  # a burst of events and cron jobs firing together
            embedded.wake()
            embedded.run_journey_job("welcome")
        wait_for(lambda: len(runner.calls) >= 2)
        assert runner.max_active == 1
        assert len(runner.calls) < 50  # wake-ups close together make one pass
    finally:
        embedded.stop(sqlite_engine, scheduler)
    embedded.wake()  # no scheduler in this process any more: a no-op


def test_a_new_event_row_wakes_a_pass(sqlite_engine: Engine) -> None:
    """Another process (serve, events import) inserts into `events`: the probe sees it within a second or so."""
    with sqlite_engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS probe_events (id INTEGER PRIMARY KEY)"))

    def probe(session: Session) -> object:
        return session.execute(text("SELECT max(id) FROM probe_events")).scalar()

    runner = CountingRunner(sessionmaker(sqlite_engine), {}, None, probes=[probe], probe_seconds=0.05)  # type: ignore[arg-type]
    runner.start()
    try:
        time.sleep(0.3)
        assert runner.calls == []  # nothing new, nothing run (the minute job is not part of this runner)
        with sqlite_engine.begin() as conn:
            conn.execute(text("INSERT INTO probe_events (id) VALUES (1)"))
        wait_for(lambda: len(runner.calls) == 1)
    finally:
        runner.stop(timeout=30)


def test_the_default_probe_watches_the_events_table(sqlite_engine: Engine) -> None:
    from audiences.models.events import Event

    assert embedded.events_high_water in embedded.WAKE_PROBES
    now = datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc)
    with Session(sqlite_engine) as s:
        assert embedded.events_high_water(s) is None
        b.member(s, 1, enrolled_at=now)
        s.add(Event(type="purchase", member_id=1, occurred_at=now, received_at=now, idempotency_key="k1",
                    properties={}, source="api"))
        s.commit()
        first = embedded.events_high_water(s)
        s.add(Event(type="purchase", member_id=1, occurred_at=now, received_at=now, idempotency_key="k2",
                    properties={}, source="api"))
        s.commit()
        assert first is not None and embedded.events_high_water(s) > first


def test_a_failing_pass_is_retried_within_seconds(sqlite_engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    runner = CountingRunner(sessionmaker(sqlite_engine), {}, None, probes=[], fail=3,  # type: ignore[arg-type]
                            retry_seconds=(0.05, 0.1, 0.2))
    runner.start()
    try:
        runner.wake()
        wait_for(lambda: len(runner.calls) >= 4)
    finally:
        runner.stop(timeout=30)
    assert runner.failures == 0  # the fourth attempt succeeded without any new wake-up
    gaps = [(b - a).total_seconds() for a, b in zip(runner.calls, runner.calls[1:4])]
    assert all(g >= 0.05 for g in gaps)
    failed = [r.getMessage() for r in caplog.records if "pass failed" in r.getMessage()]
    assert failed == ["pass failed (RuntimeError); retrying in 0.05s", "pass failed (RuntimeError); retrying in 0.1s",
                      "pass failed (RuntimeError); retrying in 0.2s"]
