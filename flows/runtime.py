"""Process-wide resources for flows: the database engine and the engine's services, built once.

A Prefect worker runs many task runs in one process; compiling every template or opening a
pool per task would dominate the run, so both are cached here.
"""

from __future__ import annotations

import logging
import os
import tempfile
from functools import lru_cache

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from audiences.db import make_engine
from flows.migrate import require_current
from journeys.services import Services, default_services


def quiet_prefect() -> None:
    """Sensible defaults for running Prefect from the CLI: no telemetry, terse logs, a private home."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_HOME", os.path.join(tempfile.gettempdir(), f"loyalflow-prefect-{os.getuid()}"))
    # the ephemeral API logs harmless cancellation noise while it shuts down
    for name in ("prefect.server", "prefect.server.services.task_run_recorder", "uvicorn.error"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


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
