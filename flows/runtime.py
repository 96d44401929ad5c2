"""Process-wide resources for flows: the database engine and the engine's services, built once.

A Prefect worker runs many task runs in one process; compiling every template or opening a
pool per task would dominate the run, so both are cached here.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from audiences.db import make_engine
from audiences.errors import LoyalflowError
from flows.migrate import require_current
from journeys.services import Services, default_services

LOCAL_API_STARTUP_TIMEOUT = 300  # Prefect's default (20 s) loses the race on a busy 2-core laptop


class PrefectUnavailable(LoyalflowError):
    """Prefect's local API did not start; the message says what to do."""


def quiet_prefect() -> None:
    """Sensible defaults for running Prefect from the CLI: no telemetry, terse logs, a private home."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")  # a loaded laptop is slow
    os.environ.setdefault("PREFECT_HOME", os.path.join(tempfile.gettempdir(), f"loyalflow-prefect-{os.getuid()}"))
    # the temporary API (a subprocess inheriting this environment) logs its services' cancellation as
    # ERROR tracebacks when it is stopped; a server you start yourself (`prefect server start`) is not affected
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
    # the ephemeral API logs harmless cancellation noise while it shuts down
    for name in ("prefect.server", "prefect.server.services.task_run_recorder", "uvicorn.error"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


@contextmanager
def local_api() -> Iterator[str | None]:
    """Prefect's local API, started once for a whole command and stopped at its end.

    Every flow run of the command reuses it (Prefect keeps one temporary server per process), the
    start waits as long as a loaded machine needs, a start that still fails is one line saying what
    to do, and nothing is left running to be torn down noisily at interpreter exit. With
    PREFECT_API_URL set, that server is used and nothing is started.
    """
    quiet_prefect()
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        yield PREFECT_API_URL.value()
        return
    from prefect.server.api.server import SubprocessASGIServer

    timeout = int(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", LOCAL_API_STARTUP_TIMEOUT))
    server = SubprocessASGIServer()
    try:
        server.start(timeout=timeout)
    except Exception as exc:  # Prefect raises RuntimeError with the server's whole output
        server.stop()
        raise PrefectUnavailable(
            f"Prefect's local API did not start within {timeout} s ({type(exc).__name__}): run the command again "
            "on a less busy machine, raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or start a server "
            "(`prefect server start`) and set PREFECT_API_URL=http://127.0.0.1:4200/api") from None
    try:
        yield server.api_url
    finally:
        _drain_prefect_workers()
        server.stop()


def _drain_prefect_workers() -> None:
    """Send Prefect's buffered logs and events before its API stops (else: connection errors at exit)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        try:
            worker.drain_all(timeout=30, at_exit=False)
        except Exception:  # noqa: BLE001 - a worker that never started has nothing to send
            pass


# Progress of long flows run in this process (the demo's simulated days): flows call progress(),
# a command that wants to show it registers a listener for its duration.
_listeners: list[Callable[[str], None]] = []


def progress(message: str) -> None:
    """Tell whoever is listening in this process how far a long flow got (a no-op otherwise)."""
    for listener in list(_listeners):
        listener(message)


@contextmanager
def listening(listener: Callable[[str], None]) -> Iterator[None]:
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


@lru_cache(maxsize=4)
def engine(url: str | None = None) -> Engine:
    return require_current(make_engine(url))


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    return sessionmaker(engine(url), expire_on_commit=False)


@lru_cache(maxsize=1)
def services() -> Services:
    return default_services()


def reset() -> None:
    """Forget cached resources (tests change settings between runs)."""
    engine.cache_clear()
    services.cache_clear()
