"""Feedback test fixtures: a signing secret from the environment, the real `loyalflow serve` app on a
migrated database, and Twilio-signed posts (the official SDK's RequestValidator)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from channels.settings import ChannelSettings
from channels.webhooks.app import create_app
from tests.support.webhook_signing import AUTH_TOKEN
from tests.support.webhook_signing import twilio_post as signed_twilio_post

with warnings.catch_warnings():  # Starlette suggests httpx2 for its test client; httpx is what we ship
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

BASE = "https://loyalflow.test"
SECRET = "feedback-test-link-secret"
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def link_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Links are signed and checked under LOYALFLOW_LINK_SECRET and point at BASE (as in production)."""
    monkeypatch.setenv("LOYALFLOW_LINK_SECRET", SECRET)
    monkeypatch.setenv("LOYALFLOW_PUBLIC_BASE_URL", BASE)
    monkeypatch.delenv("LOYALFLOW_UNSUBSCRIBE_SECRET", raising=False)


@pytest.fixture()
def app_settings(tmp_path: Any) -> ChannelSettings:
    return ChannelSettings(_env_file=None, outbox_dir=tmp_path / "outbox", public_base_url=BASE,
                           unsubscribe_secret=SecretStr("unsubscribe-secret"), twilio_auth_token=SecretStr(AUTH_TOKEN))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture()
def serve(app_settings: ChannelSettings) -> Iterator[Callable[[Engine, Clock], TestClient]]:
    """The real app behind `loyalflow serve` on `engine`, its clock given by the test."""
    clients: list[TestClient] = []

    def start(engine: Engine, clock: Clock) -> TestClient:
        client = TestClient(create_app(engine, app_settings, clock=clock), base_url=BASE)
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def path_of(url: str) -> str:
    return urlsplit(url).path


def twilio_reply(client: TestClient, sender: str, body: str, sid: str) -> Any:
    params = {"From": sender, "To": "+15005550006", "Body": body, "MessageSid": sid}
    return signed_twilio_post(client, BASE, "/webhooks/twilio/inbound", params)
