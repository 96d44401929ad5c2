"""The official SDKs against local fakes: every outcome mapped, retries honour reset headers,
401/403 stops the run, and nothing is sent twice."""

from __future__ import annotations

import dataclasses
import socket
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from audiences.models import DeviceToken
from channels.adapters.base import DeliveryResult, DeliveryStatus
from channels.adapters.fcm import FcmAdapter
from channels.adapters.sendgrid import SendGridAdapter
from channels.adapters.twilio import TwilioAdapter
from channels.consent import suppressed_addresses
from channels.errors import ProviderConfigError
from channels.feedback import apply_delivery_results
from channels.ratelimit import TokenBucket
from channels.settings import ChannelSettings
from tests.channels.conftest import T0, SleepRecorder, add_members
from tests.channels.messages import email, push, sms
from tests.support.fake_providers import FakeFcm, FakeSendGrid, FakeTwilio, Fault, quota_exceeded, twilio_error, unavailable
from tests.support.fake_providers import sendgrid as sg_fake
from tests.support.fake_providers import twilio as tw_fake

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def fast() -> TokenBucket:
    return TokenBucket(1_000_000)


def statuses(results: list[DeliveryResult]) -> dict[int, DeliveryStatus]:
    return {r.ledger_id: r.status for r in results}


# --- SendGrid -----------------------------------------------------------------------------------


def test_sendgrid_accepts_with_custom_args_categories_and_unsubscribe_headers(
    provider_settings: ChannelSettings, fake_sendgrid: FakeSendGrid, sleeps: SleepRecorder
) -> None:
    adapter = SendGridAdapter(provider_settings, bucket=fast(), sleep=sleeps)
    [result] = adapter.send([email(11)])
    [received] = fake_sendgrid.received
    assert result.status is DeliveryStatus.accepted and result.provider_message_id
    body = received.body
    assert body["custom_args"] == {
        "ledger_id": "11", "journey": "win_back", "step": "email_offer", "purpose": "marketing",
        "recipient_kind": "member", "recipient_id": "11",
    }
    assert sorted(body["categories"]) == ["marketing", "win_back"]
    assert body["headers"] == {"List-Unsubscribe": "<https://loyalflow.test/u/tok11>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert received.headers["authorization"] == "Bearer SG.test-key"
    [transactional] = adapter.send([email(12, purpose="transactional")])
    assert transactional.status is DeliveryStatus.accepted
    assert "headers" not in fake_sendgrid.received[-1].body


def test_sendgrid_429_waits_for_the_reset_then_sends_once(
    provider_settings: ChannelSettings, fake_sendgrid: FakeSendGrid, sleeps: SleepRecorder
) -> None:
    fake_sendgrid.script(sg_fake.rate_limited(reset_in=2), sg_fake.server_error(500), sg_fake.server_error(503))
    settings = provider_settings.model_copy(update={"max_attempts": 4})
    [result] = SendGridAdapter(settings, bucket=fast(), sleep=sleeps).send([email(1)])
    assert result.status is DeliveryStatus.accepted
    assert [r.status for r in fake_sendgrid.received] == [429, 500, 503, 202]
    assert 1.0 <= sleeps.delays[0] <= 2.0  # X-RateLimit-Reset is a Unix time in whole seconds
    assert len(sleeps.delays) == 3


def test_sendgrid_gives_up_as_retryable_and_400_is_permanent(
    provider_settings: ChannelSettings, fake_sendgrid: FakeSendGrid, sleeps: SleepRecorder
) -> None:
    fake_sendgrid.per_recipient["down@example.com"] = sg_fake.server_error(502)
    fake_sendgrid.per_recipient["bad@example.com"] = Fault(400, {"errors": [{"field": "personalizations.0.to", "message": "Invalid email"}]})
    results = SendGridAdapter(provider_settings, bucket=fast(), sleep=sleeps).send(
        [email(1, to="down@example.com"), email(2, to="bad@example.com"), email(3)]
    )
    assert statuses(results) == {1: DeliveryStatus.retryable, 2: DeliveryStatus.permanent, 3: DeliveryStatus.accepted}
    assert results[1].error_code == "400" and results[1].reason == "Invalid email"
    assert "gave up after 3 attempts" in (results[0].reason or "")
    sent_to = Counter(r.body["personalizations"][0]["to"][0]["email"] for r in fake_sendgrid.received)
    assert sent_to == {"down@example.com": 3, "bad@example.com": 1, "ana@example.com": 1}


def test_sendgrid_timeout_is_retried(provider_settings: ChannelSettings, fake_sendgrid: FakeSendGrid, sleeps: SleepRecorder) -> None:
    fake_sendgrid.script(Fault(503, {"errors": []}, delay=1.5))  # answers after the 0.5 s client timeout
    [result] = SendGridAdapter(provider_settings, bucket=fast(), sleep=sleeps).send([email(5)])
    assert result.status is DeliveryStatus.accepted
    assert len(fake_sendgrid.accepted) == 1


def test_unreachable_providers_are_retryable_not_fatal(provider_settings: ChannelSettings, sleeps: SleepRecorder) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"  # nothing listens here once closed
    down = provider_settings.model_copy(update={"sendgrid_base_url": closed, "twilio_base_url": closed})
    [mail] = SendGridAdapter(down, bucket=fast(), sleep=sleeps).send([email(1)])
    [text] = TwilioAdapter(down, bucket=fast(), sleep=sleeps).send([sms(2)])
    assert (mail.status, mail.error_code) == (DeliveryStatus.retryable, "network")
    assert (text.status, text.error_code) == (DeliveryStatus.retryable, "network")
    assert len(sleeps.delays) == 2 * (down.max_attempts - 1)


def test_twilio_timeout_is_retried(provider_settings: ChannelSettings, fake_twilio: FakeTwilio, sleeps: SleepRecorder) -> None:
    fake_twilio.script(Fault(503, {"code": 20500, "status": 503}, delay=1.5))  # after the 0.5 s client timeout
    [result] = TwilioAdapter(provider_settings, bucket=fast(), sleep=sleeps).send([sms(7)])
    assert result.status is DeliveryStatus.accepted
    assert len(fake_twilio.accepted) == 1


def test_sendgrid_401_stops_the_run_and_sends_nothing_more(
    provider_settings: ChannelSettings, fake_sendgrid: FakeSendGrid, sleeps: SleepRecorder
) -> None:
    settings = provider_settings.model_copy(update={"concurrency": 1})
    adapter = SendGridAdapter(settings, bucket=fast(), sleep=sleeps)
    fake_sendgrid.api_key = "SG.rotated"
    with pytest.raises(ProviderConfigError, match=r"sendgrid refused the credentials \(HTTP 401\)") as caught:
        adapter.send([email(i) for i in range(1, 21)])
    assert len(fake_sendgrid.received) == 1  # stopped at once
    assert caught.value.results == []
    assert "SG.test-key" not in str(caught.value)


def test_sendgrid_401_mid_batch_keeps_what_was_accepted(
    provider_settings: ChannelSettings, fake_sendgrid: FakeSendGrid, sleeps: SleepRecorder
) -> None:
    fake_sendgrid.per_recipient["m5@example.com"] = Fault(403, {"errors": [{"message": "access forbidden"}]})
    adapter = SendGridAdapter(provider_settings.model_copy(update={"concurrency": 1}), bucket=fast(), sleep=sleeps)
    with pytest.raises(ProviderConfigError) as caught:
        adapter.send([email(i, to=f"m{i}@example.com") for i in range(1, 11)])
    assert [r.ledger_id for r in caught.value.results] == [1, 2, 3, 4]
    assert caught.value.unsent == [5, 6, 7, 8, 9, 10]
    assert len(fake_sendgrid.received) == 5


def test_sendgrid_nothing_sent_twice_under_faults_and_concurrency(
    provider_settings: ChannelSettings, fake_sendgrid: FakeSendGrid, sleeps: SleepRecorder
) -> None:
    fake_sendgrid.script(*[sg_fake.rate_limited(0), sg_fake.server_error(500), sg_fake.server_error(503)] * 5)
    settings = provider_settings.model_copy(update={"max_attempts": 10, "concurrency": 8})
    results = SendGridAdapter(settings, bucket=fast(), sleep=sleeps).send([email(i, to=f"m{i}@example.com") for i in range(40)])
    assert all(r.status is DeliveryStatus.accepted for r in results) and len(results) == 40
    per_ledger = Counter(r.body["custom_args"]["ledger_id"] for r in fake_sendgrid.accepted)
    assert per_ledger == {str(i): 1 for i in range(40)}
    assert len(fake_sendgrid.received) == 55


# --- Twilio -------------------------------------------------------------------------------------


def test_twilio_accepts_with_status_callback(provider_settings: ChannelSettings, fake_twilio: FakeTwilio, sleeps: SleepRecorder) -> None:
    [result] = TwilioAdapter(provider_settings, bucket=fast(), sleep=sleeps).send([sms(31)])
    [received] = fake_twilio.received
    assert result.status is DeliveryStatus.accepted and result.provider_message_id.startswith("SM")
    assert received.body["To"] == "+12015550123" and received.body["From"] == "+12015550100"
    callback = urlsplit(received.body["StatusCallback"])
    assert callback.path == "/webhooks/twilio/status" and parse_qs(callback.query) == {"ledger_id": ["31"]}


def test_twilio_error_codes_are_permanent_and_suppress(
    provider_settings: ChannelSettings, fake_twilio: FakeTwilio, sleeps: SleepRecorder, session: Session
) -> None:
    fake_twilio.per_recipient |= {
        "+12015550001": twilio_error(21211),
        "+12015550002": twilio_error(21614),
        "+12015550003": twilio_error(21610),
    }
    messages = [sms(1, "+12015550001"), sms(2, "+12015550002"), sms(3, "+12015550003"), sms(4)]
    results = TwilioAdapter(provider_settings, bucket=fast(), sleep=sleeps).send(messages)
    assert [(r.status.value, r.error_code, r.suppression) for r in results] == [
        ("permanent", "21211", "invalid_contact"),
        ("permanent", "21614", "invalid_contact"),
        ("permanent", "21610", "stop"),
        ("accepted", None, None),
    ]
    assert len(fake_twilio.received) == 4  # permanent failures are never retried
    assert apply_delivery_results(session, "twilio", messages, results, NOW) == 3
    assert suppressed_addresses(session, "sms", ["+12015550001", "+12015550002", "+12015550003", "+12015550123"]) == {
        "+12015550001", "+12015550002", "+12015550003"
    }


def test_twilio_429_honours_retry_after_and_401_stops(
    provider_settings: ChannelSettings, fake_twilio: FakeTwilio, sleeps: SleepRecorder
) -> None:
    fake_twilio.script(tw_fake.rate_limited(retry_after=3), twilio_error(30001, 500))
    [result] = TwilioAdapter(provider_settings, bucket=fast(), sleep=sleeps).send([sms(1)])
    assert result.status is DeliveryStatus.accepted
    assert sleeps.delays[0] == 3.0 and len(sleeps.delays) == 2
    assert [r.status for r in fake_twilio.received] == [429, 500, 201]

    bad = provider_settings.model_copy(update={"twilio_auth_token": provider_settings.twilio_auth_token.__class__("wrong")})
    with pytest.raises(ProviderConfigError, match=r"twilio refused the credentials \(HTTP 401\)"):
        TwilioAdapter(bad, bucket=fast(), sleep=sleeps).send([sms(i) for i in range(40)])
    refused = [r for r in fake_twilio.received if r.status == 401]
    assert 1 <= len(refused) <= provider_settings.concurrency  # only requests already in flight


# --- FCM ----------------------------------------------------------------------------------------


def test_fcm_oauth_then_send_and_unregistered_revokes_the_token(
    provider_settings: ChannelSettings, fake_fcm: tuple[FakeFcm, Path], sleeps: SleepRecorder, session: Session
) -> None:
    fake, _ = fake_fcm
    add_members(session, 1)
    session.add(DeviceToken(member_id=1, platform="android", token="gone-token", created_at=T0))
    session.flush()
    fake.unregistered.add("gone-token")
    messages = [push(1), push(2, "gone-token"), push(3, "device-token-3")]
    adapter = FcmAdapter(provider_settings, bucket=fast(), sleep=sleeps)
    results = adapter.send(messages)
    assert [(r.status.value, r.error_code, r.revoke_token) for r in results] == [
        ("accepted", None, False), ("permanent", "UNREGISTERED", True), ("accepted", None, False)
    ]
    assert results[0].provider_message_id.startswith("projects/loyalflow-test/messages/")
    assert fake.token_requests == 1  # one OAuth token serves every send
    [sent] = [r.body["message"] for r in fake.received if r.body["message"]["data"]["ledger_id"] == "1"]
    assert sent["notification"] == {"title": "Points expire tomorrow", "body": "120 points expire tomorrow"}
    assert sent["data"] == {"points": "120", "ledger_id": "1", "deep_link": "loyalflow://points"}
    apply_delivery_results(session, "fcm", messages, results, NOW)
    assert session.scalar(select(DeviceToken.revoked_at).where(DeviceToken.token == "gone-token")) == NOW
    adapter.close()


def test_fcm_quota_and_unavailable_are_retried(
    provider_settings: ChannelSettings, fake_fcm: tuple[FakeFcm, Path], sleeps: SleepRecorder
) -> None:
    fake, _ = fake_fcm
    fake.script(quota_exceeded(retry_after=2), unavailable())
    [result] = FcmAdapter(provider_settings, bucket=fast(), sleep=sleeps).send([push(1)])
    assert result.status is DeliveryStatus.accepted
    assert [r.status for r in fake.received] == [429, 503, 200] and sleeps.delays[0] == 2.0


def test_fcm_refreshes_a_revoked_access_token_once(
    provider_settings: ChannelSettings, fake_fcm: tuple[FakeFcm, Path], sleeps: SleepRecorder
) -> None:
    fake, _ = fake_fcm
    adapter = FcmAdapter(provider_settings, bucket=fast(), sleep=sleeps)
    assert adapter.send([push(1)])[0].status is DeliveryStatus.accepted
    fake.issued.clear()  # every access token revoked (or expired early)
    assert adapter.send([push(2)])[0].status is DeliveryStatus.accepted
    assert fake.token_requests == 2
    assert [r.status for r in fake.received] == [200, 401, 200]


def test_fcm_refused_grant_is_a_configuration_failure(
    provider_settings: ChannelSettings, fake_fcm: tuple[FakeFcm, Path], sleeps: SleepRecorder
) -> None:
    fake, _ = fake_fcm
    fake.refuse_grants = True
    with pytest.raises(ProviderConfigError, match="fcm refused the credentials"):
        FcmAdapter(provider_settings, bucket=fast(), sleep=sleeps).send([push(i) for i in range(5)])
    assert fake.received == []


# --- malformed input and bugs -------------------------------------------------------------------


def test_a_malformed_batch_sends_nothing(provider_settings: ChannelSettings, fake_sendgrid: FakeSendGrid,
                                         fake_twilio: FakeTwilio, sleeps: SleepRecorder) -> None:
    with pytest.raises(TypeError, match="ledger 2: email channel needs a RenderedEmail"):
        SendGridAdapter(provider_settings, bucket=fast(), sleep=sleeps).send([email(1), dataclasses.replace(sms(2), channel="email")])
    with pytest.raises(TypeError, match="ledger 2: sms channel needs a RenderedSms"):
        TwilioAdapter(provider_settings, bucket=fast(), sleep=sleeps).send([sms(1), dataclasses.replace(email(2), channel="sms")])
    assert fake_sendgrid.received == [] and fake_twilio.received == []


def test_an_unexpected_error_fails_that_message_only(provider_settings: ChannelSettings, fake_sendgrid: FakeSendGrid,
                                                     sleeps: SleepRecorder, monkeypatch: pytest.MonkeyPatch) -> None:
    adapter = SendGridAdapter(provider_settings, bucket=fast(), sleep=sleeps)
    real = adapter._attempt

    def flaky(body: dict[str, object]) -> object:
        if body["custom_args"]["ledger_id"] == "2":  # type: ignore[index]
            raise KeyError("bug")
        return real(body)

    monkeypatch.setattr(adapter, "_attempt", flaky)
    results = adapter.send([email(1), email(2), email(3)])
    assert [(r.ledger_id, r.status.value, r.error_code) for r in results] == [
        (1, "accepted", None), (2, "permanent", "adapter_error"), (3, "accepted", None)]
