"""Fixtures of the events tests: members to attach events to, the real ASGI app with an API key,
and a recording adapter behind the real renderer and gate."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from audiences.models import Event, Member
from channels.settings import ChannelSettings
from channels.webhooks.app import create_app
from journeys.models import Enrollment, Send
from journeys.services import Services, services_for
from tests.journeys.recording import RecordingAdapter

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
KEY = "test-events-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


def add_members(engine: Engine, count: int, *, zone: str = "Europe/Paris", locale: str = "fr") -> list[int]:
    with Session(engine) as s:
        s.add_all(Member(id=i, first_name=f"M{i}", email=f"member{i}@example.com", phone=None, locale=locale,
                         time_zone=zone, country="FR", enrolled_at=NOW - timedelta(days=30)) for i in range(1, count + 1))
        s.commit()
    return list(range(1, count + 1))


def purchase(key: str, member_id: int, occurred_at: datetime, **properties: Any) -> dict[str, Any]:
    props = {"amount": 54.9, "currency": "EUR", "store_name": "Lyon Part-Dieu", "points_earned": 55,
             "first_purchase": True} | properties
    return {"type": "purchase", "member_id": member_id, "occurred_at": occurred_at.isoformat(),
            "idempotency_key": key, "properties": props}


def counts(engine: Engine) -> tuple[int, int, int]:
    """(events, enrollments, ledger rows)"""
    with Session(engine) as s:
        return tuple(int(s.scalar(select(func.count()).select_from(t)) or 0) for t in (Event, Enrollment, Send))  # type: ignore[return-value]


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


def factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
