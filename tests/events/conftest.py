"""Fixtures of the events tests: members to attach events to, the real ASGI app with an API key,
and a recording adapter behind the real renderer and gate."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from channels.settings import ChannelSettings
from channels.webhooks.app import create_app
from journeys.services import Services, services_for
from tests.events.events_data import (  # noqa: F401 - used by fixtures here
    AUTH,
    KEY,
    NOW,
    add_members,
    counts,
    factory,
    purchase,
)
from tests.journeys.recording import RecordingAdapter


@pytest.fixture()
def settings(tmp_path: Path) -> ChannelSettings:
    return ChannelSettings(_env_file=None, outbox_dir=tmp_path / "outbox", unsubscribe_secret="test-unsub-secret",
                           public_base_url="https://loyalflow.test")


@pytest.fixture()
def client_for(settings: ChannelSettings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """client_for(engine, key=KEY, clock=NOW): a TestClient on the real `loyalflow serve` app."""
    clients: list[TestClient] = []

    def make(engine: Engine, key: str | None = KEY, now: datetime = NOW) -> TestClient:
        if key is None:
            monkeypatch.delenv("LOYALFLOW_EVENTS_API_KEY", raising=False)
        else:
            monkeypatch.setenv("LOYALFLOW_EVENTS_API_KEY", key)
        client = TestClient(create_app(engine, settings, clock=lambda: now), base_url="https://loyalflow.test")
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


@pytest.fixture()
def recorder() -> RecordingAdapter:
    return RecordingAdapter()


@pytest.fixture()
def services(recorder: RecordingAdapter) -> Services:
    return services_for(recorder)


