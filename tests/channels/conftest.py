"""Fixtures of the channels tests: members and staff to address, and channel settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import freezegun
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from audiences.db import session_scope
from channels.settings import ChannelSettings


@pytest.fixture()
def session(sqlite_engine: Engine) -> Iterator[Session]:
    with session_scope(sqlite_engine) as s:
        yield s


@pytest.fixture()
def any_session(engine: Engine) -> Iterator[Session]:
    """A session on SQLite and on PostgreSQL."""
    with session_scope(engine) as s:
        yield s


@pytest.fixture()
def settings(tmp_path: Path) -> ChannelSettings:
    return ChannelSettings(
        _env_file=None,
        outbox_dir=tmp_path / "outbox",
        unsubscribe_secret="test-unsubscribe-secret",
        public_base_url="https://loyalflow.test",
    )


# --- fake providers and adapters pointed at them ------------------------------------------------

from tests.channels.people import T0, SleepRecorder, add_members, add_staff  # noqa: F401 - used by fixtures here
from tests.support.fake_providers import FakeFcm, FakeSendGrid, FakeTwilio  # noqa: E402
from tests.support.fake_providers.service_account import write_service_account  # noqa: E402


@pytest.fixture()
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture(scope="module")
def real_time_event_loops() -> Iterator[None]:
    """While servers run in background threads, a frozen clock must not freeze their event loops
    (an asyncio.sleep scheduled at a frozen instant would never fire once time thaws)."""
    saved = list(freezegun.config.settings.default_ignore_list)
    freezegun.configure(extend_ignore_list=["asyncio", "uvicorn", "starlette", "anyio", "h11"])
    yield
    freezegun.configure(default_ignore_list=saved)


@pytest.fixture(scope="module")
def _sendgrid_server(real_time_event_loops: None) -> Iterator[FakeSendGrid]:
    with FakeSendGrid(api_key="SG.test-key") as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture(scope="module")
def _twilio_server(real_time_event_loops: None) -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture(scope="module")
def _fcm_server(real_time_event_loops: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeFcm, Path]]:
    with FakeFcm() as fake:
        path, public_pem = write_service_account(tmp_path_factory.mktemp("fcm"), f"{fake.base_url}/token")
        fake.public_key_pem = public_pem  # type: ignore[attr-defined]
        yield fake, path  # type: ignore[misc]


@pytest.fixture()
def fake_sendgrid(_sendgrid_server: FakeSendGrid) -> FakeSendGrid:
    _sendgrid_server.reset()
    _sendgrid_server.api_key = "SG.test-key"
    _sendgrid_server.latency = 0.0
    return _sendgrid_server


@pytest.fixture()
def fake_twilio(_twilio_server: FakeTwilio) -> FakeTwilio:
    _twilio_server.reset()
    return _twilio_server


@pytest.fixture()
def fake_fcm(_fcm_server: tuple[FakeFcm, Path]) -> tuple[FakeFcm, Path]:
    fake, path = _fcm_server
    fake.reset()
    fake.unregistered.clear()
    fake.refuse_grants = False
    fake.token_requests = 0
    return fake, path


@pytest.fixture()
def provider_settings(
    settings: ChannelSettings, fake_sendgrid: FakeSendGrid, fake_twilio: FakeTwilio, fake_fcm: tuple[FakeFcm, Path]
) -> ChannelSettings:
    return settings.model_copy(
        update={
            "delivery_mode": "providers",
            "sendgrid_api_key": SecretStr("SG.test-key"),
            "sendgrid_base_url": fake_sendgrid.base_url,
            "twilio_account_sid": fake_twilio.account_sid,
            "twilio_auth_token": SecretStr(fake_twilio.auth_token),
            "twilio_base_url": fake_twilio.base_url,
            "sms_from": "+12015550100",
            "fcm_project_id": fake_fcm[0].project_id,
            "fcm_credentials_file": fake_fcm[1],
            "fcm_base_url": fake_fcm[0].base_url,
            "request_timeout_seconds": 0.5,
            "max_attempts": 3,
            "concurrency": 4,
        }
    )
