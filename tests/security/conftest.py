"""Fixtures of the security tests: an app with every webhook key set, and members to address."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from audiences.db import session_scope
from channels.settings import ChannelSettings
from channels.webhooks.app import create_app
from tests.security.people import BASE, NOW, add_member  # noqa: F401 - used by fixtures here
from tests.support.webhook_signing import AUTH_TOKEN, PUBLIC_KEY

with warnings.catch_warnings():  # Starlette suggests httpx2 for its test client; httpx is what we ship
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@pytest.fixture()
def hook_settings() -> ChannelSettings:
    return ChannelSettings(
        _env_file=None,
        public_base_url=BASE,
        unsubscribe_secret=SecretStr("security-test-secret"),
        sendgrid_webhook_public_key=SecretStr(PUBLIC_KEY),
        twilio_auth_token=SecretStr(AUTH_TOKEN),
    )


@pytest.fixture()
def client(sqlite_engine: Engine, hook_settings: ChannelSettings) -> Iterator[TestClient]:
    with session_scope(sqlite_engine) as s:
        for i in (1, 2, 3):
            add_member(s, i, locale=("en", "fr", "de")[i - 1])
    with TestClient(create_app(sqlite_engine, hook_settings, clock=lambda: NOW), base_url=BASE) as c:
        yield c
