"""Shared fixtures: a migrated SQLite database per test, and a real PostgreSQL per session."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from audiences.db import make_engine
from flows import migrate
from tests.support.postgres import PostgresServer, start_postgres

# Prefect reads these when first imported: no telemetry, no network, a private home per test run
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="loyalflow-test-prefect-"))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


@pytest.fixture()
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite file database (a file, so several connections see one database)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'loyalflow.db'}")
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | str]:
    external = os.environ.get("LOYALFLOW_TEST_POSTGRES_URL")
    if external:
        yield external
        return
    server = start_postgres()
    if server is None:
        if os.environ.get("LOYALFLOW_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL server binaries not found and LOYALFLOW_REQUIRE_POSTGRES=1")
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    yield server
    server.stop()


@pytest.fixture()
def postgres_url(postgres_server: PostgresServer | str) -> Iterator[str]:
    """A fresh, empty database on the session's PostgreSQL server."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin_url = postgres_server if isinstance(postgres_server, str) else postgres_server.admin_url
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture()
def postgres_engine(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    """The same test on the embedded default and on a real PostgreSQL."""
    name = "sqlite_engine" if request.param == "sqlite" else "postgres_engine"
    return request.getfixturevalue(name)


# The fast lane (`python -m pytest -m "not slow"`): everything that starts a service, spawns processes or
# needs a real server is slow, whether or not its module remembered to say so.
_SLOW_FIXTURES = {"postgres_server", "postgres_url", "postgres_engine", "prefect_api"}
_SLOW_FOLDERS = ("reliability", "contract", "bench")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(str(item.fspath)).parent.name
        uses = set(getattr(item, "fixturenames", ()))
        if folder in _SLOW_FOLDERS or uses & _SLOW_FIXTURES or item.get_closest_marker("postgres"):
            item.add_marker(pytest.mark.slow)
