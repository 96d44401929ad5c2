"""Flow tests share one Prefect test harness (a temporary local API) for the whole session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    from flows.runtime import quiet_prefect

    quiet_prefect()
    # a loaded CI box can take minutes to start the temporary API
    with prefect_test_harness(server_startup_timeout=600):
        yield


@pytest.fixture()
def flow_env(sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Flows against the test's SQLite database, delivering to an outbox under tmp_path."""
    from flows import runtime

    outbox = tmp_path / "outbox"
    monkeypatch.setenv("LOYALFLOW_DATABASE_URL", str(sqlite_engine.url))
    monkeypatch.setenv("LOYALFLOW_OUTBOX_DIR", str(outbox))
    monkeypatch.setenv("LOYALFLOW_DELIVERY_MODE", "outbox")
    runtime.reset()
    yield outbox
    runtime.reset()
