"""The embedded scheduler: APScheduler 3 with its jobs in loyalflow's own database.

One job per journey at its cron (UTC); missed runs coalesce into one; a job never runs twice at
once (max_instances=1) and a journey never overlaps itself anywhere (the run lock). Only one
scheduler may run against a database: it holds the `scheduler` run lock and renews it.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timedelta, timezone

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from audiences.errors import LoyalflowError
from journeys.dsl import Journey
from journeys.locks import LockHeld, release, try_acquire

log = logging.getLogger("loyalflow.scheduler")

JOBS_TABLE = "scheduler_jobs"
LOCK = "scheduler"
LOCK_TTL = timedelta(minutes=2)
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600}


class SchedulerAlreadyRunning(LoyalflowError):
    """Another `loyalflow scheduler` holds this database."""


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_journey_job(journey: str) -> None:
    """What a job runs: one journey tick as a Prefect flow run (the local API when no server is set)."""
    from flows import runtime
    from flows.journey_flows import journey_tick

    runtime.quiet_prefect()
    try:
        journey_tick(journey)
    except LockHeld as exc:
        log.warning("%s", exc)


def renew_lock(url: str, owner: str) -> None:
    from audiences.db import make_engine

    engine = make_engine(url)
    with Session(engine) as session:
        if not try_acquire(session, LOCK, owner, datetime.now(timezone.utc), LOCK_TTL):
            log.error("lost the scheduler lock to another instance; stopping")
            os._exit(3)  # another scheduler took over: never run two
    engine.dispose()


def build(engine: Engine) -> BaseScheduler:
    url = engine.url.render_as_string(hide_password=False)
    return BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url=url, tablename=JOBS_TABLE)},
                executors={"default": ThreadPoolExecutor(4)}, job_defaults=JOB_DEFAULTS, timezone=timezone.utc)


def sync_jobs(scheduler: BaseScheduler, journeys: dict[str, Journey]) -> list[str]:
    """One job per journey, replacing changed schedules and removing journeys that are gone."""
    wanted = {f"journey:{name}": j for name, j in journeys.items()}
    for job in scheduler.get_jobs():
        if job.id.startswith("journey:") and job.id not in wanted:
            job.remove()
    for job_id, journey in wanted.items():
        scheduler.add_job(run_journey_job, CronTrigger.from_crontab(journey.schedule, timezone=timezone.utc),
                          id=job_id, name=journey.name, args=[journey.name], replace_existing=True)
    return sorted(wanted)


def acquire(engine: Engine, owner: str) -> None:
    with Session(engine) as session:
        if not try_acquire(session, LOCK, owner, datetime.now(timezone.utc), LOCK_TTL):
            raise SchedulerAlreadyRunning("another loyalflow scheduler is running against this database; "
                                          "only one may run at a time")


def start(engine: Engine, journeys: dict[str, Journey]) -> BaseScheduler:
    """Take the scheduler lock, load the persisted jobs, sync them with the journeys, and run."""
    owner = owner_id()
    acquire(engine, owner)
    scheduler = build(engine)
    scheduler.start(paused=True)
    sync_jobs(scheduler, journeys)
    url = engine.url.render_as_string(hide_password=False)
    scheduler.add_job(renew_lock, IntervalTrigger(seconds=30), id="scheduler:lock", args=[url, owner],
                      replace_existing=True)
    scheduler.resume()
    return scheduler


def stop(engine: Engine, scheduler: BaseScheduler) -> None:
    if scheduler.running:
        scheduler.shutdown(wait=True)
    with Session(engine) as session:
        release(session, LOCK, owner_id())
