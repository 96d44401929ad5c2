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
import socket
import threading
from collections.abc import Callable, Mapping
from datetime import timedelta, timezone

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from audiences.errors import LoyalflowError
from audiences.events import add_wake_listener
from flows.cron import UnsupportedCron, cron_trigger, fire_times  # noqa: F401 - part of this module's surface
from flows.pass_runner import (  # noqa: F401 - the runner is part of this module's surface
    RETRY_SECONDS, WAKE_PROBES, PassRunner, events_high_water, failure_reason, utcnow,
)
from journeys.dsl import Journey
from journeys.locks import release, try_acquire
from journeys.services import Services

log = logging.getLogger("loyalflow.scheduler")

JOBS_TABLE = "scheduler_jobs"
LOCK = "scheduler"
LOCK_TTL = timedelta(minutes=2)
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600}
PASS_JOB = "pass:every-minute"




class SchedulerAlreadyRunning(LoyalflowError):
    """Another `loyalflow scheduler` holds this database."""


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
        log.warning("could not renew the scheduler lock (%s); retrying in 30s", failure_reason(exc))
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
            reason = failure_reason(exc) if isinstance(exc, OperationalError) else str(exc)
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
