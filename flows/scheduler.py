"""The embedded scheduler: APScheduler 3 with its jobs in loyalflow's own database, running passes.

A *pass* (`journeys.passes.run_pass`) enrolls the journeys whose cron fired since they last
enrolled and advances every enrollment due now, across journeys in priority order. It is a
plain engine call: no Prefect, so no temporary API that may be slow to start can lose a tick.

Jobs (kept in the database, coalesced, one instance each): a pass every minute at second 0,
and one job per journey at its cron (so entry is on time to the second). Jobs do not run the
pass themselves: they wake one runner thread, so passes never overlap and many wake-ups close
together make one pass. The runner also wakes on `wake()` (an event received in this process)
and when a wake probe sees something new (e.g. a new row in `events`, written by another
process), checked every second with one indexed query each. A pass that raises (the database
went away) is logged without personal data and retried within seconds; nothing due is lost,
because what is due and which crons fired are read from the database, not remembered.

Only one scheduler may run against a database: it holds the `scheduler` run lock and renews it.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from croniter import croniter
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from audiences.errors import LoyalflowError
from audiences.events import add_wake_listener
from journeys.dsl import Journey
from journeys.locks import release, try_acquire
from journeys.services import Services

log = logging.getLogger("loyalflow.scheduler")

JOBS_TABLE = "scheduler_jobs"
LOCK = "scheduler"
LOCK_TTL = timedelta(minutes=2)
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600}
PASS_JOB = "pass:every-minute"
PROBE_SECONDS = 1.0
RETRY_SECONDS = (1, 2, 5, 10, 30)
"""Waits before retrying a failed pass: prompt first, then gentler while the database stays down."""

CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

WakeProbe = Callable[[Session], Any]
"""One cheap indexed query; the runner wakes when its value changes (e.g. the newest event id)."""


class SchedulerAlreadyRunning(LoyalflowError):
    """Another `loyalflow scheduler` holds this database."""


class UnsupportedCron(LoyalflowError):
    """A cron the embedded scheduler cannot express exactly (it would fire at other times than cron)."""


# -- cron -> APScheduler ------------------------------------------------------------------------

def _cron_days(expr: str) -> str:
    """Cron's day-of-week field as APScheduler names (cron counts 0 = Sunday, APScheduler 0 = Monday)."""
    field = expr.split()[4]
    if field in ("*", "?"):
        return "*"
    if "#" in field or re.search(r"\d[lL]", field):  # nth or last weekday of the month
        raise UnsupportedCron(f"cron {expr!r}: day of week {field!r} (nth or last weekday) is not supported")
    days = croniter(expr).expanded[4]  # croniter's own reading: numbers 0-6 (7 folded into 0), names resolved
    if days == ["*"]:
        return "*"
    return ",".join(CRON_DAYS[int(d) % 7] for d in sorted({int(d) % 7 for d in days}))


def cron_trigger(expr: str, tz: Any = timezone.utc) -> BaseTrigger:
    """The APScheduler trigger that fires exactly when cron (and croniter) would.

    Two differences from `CronTrigger.from_crontab` are corrected: day-of-week numbers (cron's
    0 and 7 are Sunday, APScheduler's 0 is Monday), and a cron with both a day of month and a day
    of week fires on either (cron's rule), where APScheduler would require both.
    """
    if not croniter.is_valid(expr):
        raise UnsupportedCron(f"cron {expr!r} is not a valid 5-field cron expression")
    minute, hour, day, month, _ = expr.split()
    days = _cron_days(expr)
    if day not in ("*", "?") and days != "*":
        return OrTrigger([CronTrigger(minute=minute, hour=hour, day=day, month=month, timezone=tz),
                          CronTrigger(minute=minute, hour=hour, month=month, day_of_week=days, timezone=tz)])
    return CronTrigger(minute=minute, hour=hour, day="*" if day == "?" else day, month=month,
                       day_of_week=days, timezone=tz)


# -- the pass runner ----------------------------------------------------------------------------

def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def events_high_water(session: Session) -> Any:
    """The newest event id: a new event (from `serve` or `events import` in another process) wakes a pass."""
    return session.execute(text("SELECT max(id) FROM events")).scalar()


WAKE_PROBES: list[WakeProbe] = [events_high_water]
"""Probes every runner checks each second; append to add one (each must be one indexed query)."""


def _reason(exc: BaseException) -> str:
    """Why a pass failed, without personal data: the class, and for a database outage its first line."""
    if isinstance(exc, OperationalError) and exc.orig is not None:
        lines = str(exc.orig).strip().splitlines()
        return f"database error: {lines[0][:200]}" if lines else "database error"
    return type(exc).__name__


def summary(result: Any) -> dict[str, int]:
    """Counts of a pass for the log line: enrolled, sent, skipped, failed, exited (never who)."""
    per_journey = getattr(result, "journeys", None)
    if per_journey is None and isinstance(result, Mapping):
        per_journey = result
    totals = {"enrolled": 0, "advanced": 0, "sent": 0, "skipped": 0, "failed": 0, "exited": 0}
    for stats in (per_journey or {}).values():
        totals["enrolled"] += stats.enrolled
        totals["advanced"] += stats.advanced
        totals["sent"] += stats.messages
        for name in ("skipped", "failed", "exited"):
            totals[name] += sum(getattr(stats, name).values())
    return totals


class PassRunner:
    """One thread that runs passes when woken; never two at once, retried promptly when one fails."""

    def __init__(self, session_factory: Callable[[], Session], journeys: Mapping[str, Journey],
                 services: Services, *, clock: Callable[[], datetime] = utcnow,
                 probes: Iterable[WakeProbe] | None = None, chunk_size: int | None = None,
                 probe_seconds: float = PROBE_SECONDS, retry_seconds: tuple[float, ...] = RETRY_SECONDS) -> None:
        self.session_factory = session_factory
        self.journeys = dict(journeys)
        self.services = services
        self.clock = clock
        self.probes = list(WAKE_PROBES if probes is None else probes)
        self.chunk_size = chunk_size
        self.probe_seconds = probe_seconds
        self.retry_seconds = retry_seconds
        self.failures = 0
        self.passes = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._seen: dict[int, Any] = {}
        self._thread: threading.Thread | None = None

    # what jobs and event producers call
    def wake(self) -> None:
        self._wake.set()

    def run_once(self, now: datetime | None = None) -> Any:
        """One pass at `now` (default the clock); raises what the pass raises."""
        from journeys.passes import run_pass

        instant = now or self.clock()
        kwargs: dict[str, Any] = {} if self.chunk_size is None else {"chunk_size": self.chunk_size}
        result = run_pass(self.session_factory, self.journeys, instant, self.services, **kwargs)
        self.passes += 1
        counts = summary(result)
        if any(counts.values()):
            log.info("pass at %s: %s", instant.isoformat(timespec="seconds"),
                     ", ".join(f"{k} {v}" for k, v in counts.items() if v))
        return result

    def probe(self) -> bool:
        """True when a probe's value changed since the last check (the first check only records it)."""
        changed = False
        try:
            with self.session_factory() as session:
                for i, probe in enumerate(self.probes):
                    try:
                        value = probe(session)
                    except Exception:  # noqa: BLE001 - e.g. no such table yet; the minute pass still runs
                        session.rollback()
                        continue
                    if i in self._seen and self._seen[i] != value:
                        changed = True
                    self._seen[i] = value
        except Exception:  # noqa: BLE001 - the database is down: the failing pass reports it
            return False
        return changed

    def step(self) -> bool:
        """Run a pass, logging a failure; returns whether it succeeded."""
        try:
            self.run_once()
        except Exception as exc:  # noqa: BLE001 - whatever failed, the pass is retried
            self.failures += 1
            delay = self.retry_seconds[min(self.failures, len(self.retry_seconds)) - 1]
            log.warning("pass failed (%s); retrying in %ss", _reason(exc), delay)
            return False
        if self.failures:
            log.warning("pass succeeded after %d failed attempt(s)", self.failures)
        self.failures = 0
        return True

    def loop(self) -> None:
        self.probe()  # remember where the probes start
        while not self._stop.is_set():
            if self.failures:
                woke = not self._stop.wait(self.retry_seconds[min(self.failures, len(self.retry_seconds)) - 1])
            else:
                woke = self._wake.wait(self.probe_seconds) or self.probe()
            if self._stop.is_set():
                break
            if woke:
                self._wake.clear()
                self.step()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.loop, name="loyalflow-pass", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Let a running pass finish (its claims are committed per chunk), then stop."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)


_runner: PassRunner | None = None


def wake() -> None:
    """Run a pass now in this process's scheduler (e.g. an event just arrived); a no-op without one."""
    if _runner is not None:
        _runner.wake()


add_wake_listener(wake)  # `serve` in this same process: an accepted event wakes the pass at once


def run_pass_job() -> None:
    """The every-minute job."""
    wake()


def run_journey_job(journey: str) -> None:
    """A journey's cron fired: the pass enrolls it (the database knows which crons fired)."""
    wake()


# -- the scheduler ------------------------------------------------------------------------------

def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def renew_lock(url: str, owner: str) -> None:
    from audiences.db import make_engine
    from audiences.errors import DatabaseUnavailable

    try:
        engine = make_engine(url)
    except DatabaseUnavailable:
        log.warning("could not renew the scheduler lock (database unreachable); retrying in 30s")
        return
    try:
        with Session(engine) as session:
            if not try_acquire(session, LOCK, owner, utcnow(), LOCK_TTL):
                log.error("lost the scheduler lock to another instance; stopping")
                os._exit(3)  # another scheduler took over: never run two
    except OperationalError as exc:
        log.warning("could not renew the scheduler lock (%s); retrying in 30s", _reason(exc))
    finally:
        engine.dispose()


def build(engine: Engine) -> BaseScheduler:
    """Jobs in the database; job threads only wake the runner (the lock renewal has its own thread)."""
    url = engine.url.render_as_string(hide_password=False)
    return BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url=url, tablename=JOBS_TABLE)},
                               executors={"default": ThreadPoolExecutor(1), "lock": ThreadPoolExecutor(1)},
                               job_defaults=JOB_DEFAULTS, timezone=timezone.utc, jobstore_retry_interval=5)


def sync_jobs(scheduler: BaseScheduler, journeys: Mapping[str, Journey]) -> list[str]:
    """The minute pass, and one job per scheduled journey at its cron; changed ones replaced, gone ones removed."""
    wanted = {f"journey:{name}": j for name, j in journeys.items() if j.schedule}  # event-only journeys: no cron
    for job in scheduler.get_jobs():
        if job.id.startswith("journey:") and job.id not in wanted:
            job.remove()
    scheduler.add_job(run_pass_job, CronTrigger(second=0, timezone=timezone.utc), id=PASS_JOB,
                      name="pass", replace_existing=True)
    for job_id, journey in wanted.items():
        scheduler.add_job(run_journey_job, cron_trigger(journey.schedule), id=job_id, name=journey.name,
                          args=[journey.name], replace_existing=True)
    return sorted([PASS_JOB, *wanted])


def acquire(engine: Engine, owner: str) -> None:
    with Session(engine) as session:
        if not try_acquire(session, LOCK, owner, utcnow(), LOCK_TTL):
            raise SchedulerAlreadyRunning("another loyalflow scheduler is running against this database; "
                                          "only one may run at a time")


def start(engine: Engine, journeys: Mapping[str, Journey], services: Services | None = None, *,
          runner: PassRunner | None = None) -> BaseScheduler:
    """Take the scheduler lock, load the persisted jobs, sync them with the journeys, and run."""
    global _runner
    owner = owner_id()
    acquire(engine, owner)
    if runner is None:
        from journeys.services import default_services

        runner = PassRunner(sessionmaker(engine, expire_on_commit=False), journeys, services or default_services())
    scheduler = build(engine)
    scheduler.start(paused=True)
    sync_jobs(scheduler, journeys)
    url = engine.url.render_as_string(hide_password=False)
    scheduler.add_job(renew_lock, IntervalTrigger(seconds=30), id="scheduler:lock", args=[url, owner],
                      executor="lock", replace_existing=True)
    _runner = runner
    runner.start()
    runner.wake()  # catch up at once: whatever came due or fired while no scheduler ran
    scheduler.resume()
    return scheduler


def start_when_reachable(connect: Callable[[], Engine], journeys: Mapping[str, Journey], stopped: threading.Event,
                         *, retry_seconds: tuple[float, ...] = RETRY_SECONDS,
                         on_wait: Callable[[str, float], None] | None = None,
                         runner: Callable[[Engine], PassRunner] | None = None) -> tuple[Engine, BaseScheduler] | None:
    """`start`, retried while the database is unreachable (a server restarting); None if stopped first.

    Only an outage is retried: a missing SQLite file, an old schema or another running scheduler are
    errors a person must fix, raised at once.
    """
    from audiences.db import DatabaseMissing
    from audiences.errors import DatabaseUnavailable

    attempt = 0
    while not stopped.is_set():
        try:
            engine = connect()
            return engine, start(engine, journeys, runner=runner(engine) if runner else None)
        except DatabaseMissing:
            raise
        except (DatabaseUnavailable, OperationalError) as exc:
            attempt += 1
            delay = retry_seconds[min(attempt, len(retry_seconds)) - 1]
            reason = _reason(exc) if isinstance(exc, OperationalError) else str(exc)
            log.warning("cannot start: %s; retrying in %ss", reason, delay)
            if on_wait is not None:
                on_wait(reason, delay)
            stopped.wait(delay)
    return None


def stop(engine: Engine, scheduler: BaseScheduler) -> None:
    global _runner
    if scheduler.running:
        scheduler.shutdown(wait=True)
    if _runner is not None:
        _runner.stop()
        _runner = None
    with Session(engine) as session:
        release(session, LOCK, owner_id())


def fire_times(trigger: BaseTrigger, start: datetime, end: datetime) -> list[datetime]:
    """A trigger's own fire times in [start, end), as APScheduler computes them (for checks and tests)."""
    out: list[datetime] = []
    previous: datetime | None = None
    moment = start
    while (fire := trigger.get_next_fire_time(previous, moment)) is not None and fire < end:
        out.append(fire)
        previous, moment = fire, fire + timedelta(microseconds=1)
    return out
