"""Security: forged, tampered and replayed webhooks (fuzzed) are refused and change nothing; no
personal data in any log line of a full demo run; secrets never printed."""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import subprocess
import sys
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import Engine
from twilio.request_validator import RequestValidator

from audiences.db import session_scope
from audiences.errors import LoyalflowError
from channels.errors import ProviderConfigError
from channels.settings import ChannelSettings
from channels.webhooks.app import create_app
from tests.channels.people import add_members
from tests.channels.test_webhooks import (
    AUTH_TOKEN,
    PUBLIC_KEY,
    counts,
    ec_key,
    events_body,
    sendgrid_headers,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BASE = "https://loyalflow.test"
SECRETS = {
    "LOYALFLOW_SENDGRID_API_KEY": "SG.reliability-secret-key-4f9a",
    "LOYALFLOW_TWILIO_AUTH_TOKEN": "twilio-secret-token-8c1e",
    "LOYALFLOW_UNSUBSCRIBE_SECRET": "unsubscribe-secret-77d2",
}


@pytest.fixture()
def hooks(sqlite_engine: Engine) -> Iterator[TestClient]:
    with session_scope(sqlite_engine) as s:
        add_members(s, 3)
    settings = ChannelSettings(_env_file=None, public_base_url=BASE, unsubscribe_secret=SecretStr("u"),
                               sendgrid_webhook_public_key=SecretStr(PUBLIC_KEY), twilio_auth_token=SecretStr(AUTH_TOKEN))
    with TestClient(create_app(sqlite_engine, settings, clock=lambda: NOW), base_url=BASE) as client:
        yield client


OTHER_KEY, _ = ec_key()
params = st.dictionaries(st.sampled_from(["From", "To", "Body", "MessageSid", "MessageStatus", "ErrorCode"]),
                         st.text(st.characters(blacklist_categories=("Cs",)), max_size=20), min_size=1)


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=200), st.just(events_body())), signer=st.sampled_from(["other_key", "stale", "none"]),
       twilio=params, twilio_token=st.sampled_from(["", "guess", AUTH_TOKEN.upper()]))
def test_fuzzed_forged_webhooks_are_refused_and_change_nothing(hooks: TestClient, sqlite_engine: Engine, body: bytes,
                                                                signer: str, twilio: dict[str, str], twilio_token: str) -> None:
    headers = {"other_key": sendgrid_headers(body, NOW, OTHER_KEY),
               "stale": sendgrid_headers(body, NOW - timedelta(minutes=6)),
               "none": {"Content-Type": "application/json"}}[signer]
    assert hooks.post("/webhooks/sendgrid/events", content=body, headers=headers).status_code == 403
    for path in ("/webhooks/twilio/inbound", "/webhooks/twilio/status"):
        signature = RequestValidator(twilio_token).compute_signature(f"{BASE}{path}", twilio) if twilio_token else ""
        assert hooks.post(path, data=twilio, headers={"X-Twilio-Signature": signature}).status_code == 403
    assert counts(sqlite_engine) == (0, 0, 0)


def test_a_replayed_twilio_stop_is_refused_even_re_signed_for_another_path(hooks: TestClient, sqlite_engine: Engine) -> None:
    stop = {"From": "+12015550123", "To": "+12015550100", "Body": "STOP", "MessageSid": "SMreplay"}
    url = f"{BASE}/webhooks/twilio/inbound"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, stop)
    assert hooks.post("/webhooks/twilio/inbound", data=stop, headers={"X-Twilio-Signature": signature}).status_code == 200
    applied = counts(sqlite_engine)
    for _ in range(3):
        assert hooks.post("/webhooks/twilio/inbound", data=stop, headers={"X-Twilio-Signature": signature}).status_code == 403
    assert counts(sqlite_engine) == applied


def test_webhook_traffic_logs_no_address(hooks: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    """Accepted and refused webhooks, unsubscribes and bad tokens, all at DEBUG: no email or phone."""
    body = events_body()
    stop = {"From": "+12015550123", "To": "+12015550100", "Body": "STOP please", "MessageSid": "SMlog"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(f"{BASE}/webhooks/twilio/inbound", stop)
    with caplog.at_level(logging.DEBUG):
        assert hooks.post("/webhooks/sendgrid/events", content=body, headers=sendgrid_headers(body, NOW)).status_code == 200
        assert hooks.post("/webhooks/sendgrid/events", content=body, headers=sendgrid_headers(body, NOW, OTHER_KEY)).status_code == 403
        assert hooks.post("/webhooks/twilio/inbound", data=stop, headers={"X-Twilio-Signature": signature}).status_code == 200
        assert hooks.post("/webhooks/twilio/inbound", data=stop | {"From": "+12015550199"},
                          headers={"X-Twilio-Signature": signature}).status_code == 403
        assert hooks.post("/unsubscribe/1/not-a-token", data={"List-Unsubscribe": "One-Click"}).status_code == 403
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert caplog.records, "nothing was logged: the check would prove nothing"
    found = re.findall(r"[\w.+-]+@[\w-]+\.[\w.]+|\+?\d{10,}", logged)
    assert not found, found


@pytest.mark.slow
def test_no_personal_data_and_no_secret_in_any_log_line_of_a_demo_run(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOYALFLOW_", "PREFECT_API"))}
    env |= SECRETS | {"PREFECT_HOME": str(tmp_path / ".prefect"), "COLUMNS": "200", "PYTHONPATH": str(ROOT)}
    log_file = tmp_path / "debug.log"
    result = subprocess.run([sys.executable, "-m", "tests.reliability.demo_with_logs", str(log_file), "demo",
                             "--members", "150", "--days", "3", "--today", "2026-11-23", "--dir", str(tmp_path / "demo")],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    logs = log_file.read_text(encoding="utf-8")
    assert logs.count("\n") > 50, "the DEBUG capture caught nothing: the scan would prove nothing"
    with sqlite3.connect(tmp_path / "demo" / "loyalflow.db") as db:
        people = db.execute("SELECT email, phone, first_name, last_name FROM members "
                            "UNION ALL SELECT email, phone, first_name, last_name FROM staff").fetchall()
        sent = db.execute("SELECT count(*) FROM sends WHERE status = 'sent'").fetchone()[0]
    assert len(people) >= 150 and sent > 0, "the demo sent nothing: the scan would prove nothing"
    leaks: list[str] = []
    for where, text in (("log", logs), ("stdout", result.stdout), ("stderr", result.stderr)):
        words = set(re.findall(r"\w+", text))
        digits = re.sub(r"\D", "", text)
        for email, phone, first, last in people:
            if email and email.lower() in text.lower():
                leaks.append(f"{where}: an email address")
            if phone and (phone in text or re.sub(r"\D", "", phone) in digits):
                leaks.append(f"{where}: a phone number")
            if first and last and (f"{first} {last}" in text or (len(first) > 3 and first in words and last in words)):
                leaks.append(f"{where}: a name")
        leaks += [f"{where}: secret {name}" for name, value in SECRETS.items() if value in text]
    assert not leaks, sorted(set(leaks))


def test_secrets_are_masked_wherever_settings_or_errors_are_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    settings = ChannelSettings(_env_file=None)
    shown = " ".join([repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump())])
    assert not [v for v in SECRETS.values() if v in shown]
    assert settings.secret("sendgrid_api_key") == SECRETS["LOYALFLOW_SENDGRID_API_KEY"]  # usable, just not shown
    error = ProviderConfigError("sendgrid", 401, "The provided authorization grant is invalid")
    assert SECRETS["LOYALFLOW_SENDGRID_API_KEY"] not in str(error)
    from audiences.db import make_engine

    with pytest.raises(LoyalflowError) as caught:  # nothing listens on port 1
        make_engine("postgresql://loyal:db-password-91b3@127.0.0.1:1/loyalflow")
    assert "db-password-91b3" not in str(caught.value) and "127.0.0.1" in str(caught.value)


def test_the_cli_never_prints_a_database_password(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALFLOW_")}
    env |= {"LOYALFLOW_DATABASE_URL": "postgresql://loyal:db-password-91b3@127.0.0.1:1/loyalflow",
            "PYTHONPATH": str(ROOT), "PREFECT_HOME": str(tmp_path / ".prefect")}
    result = subprocess.run([sys.executable, "-c", "from flows.cli import main; main()", "report"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert "db-password-91b3" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
