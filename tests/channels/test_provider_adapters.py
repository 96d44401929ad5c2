"""The official SDKs against local fakes: every outcome mapped, retries honour reset headers,
401/403 stops the run, and nothing is sent twice."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from audiences.models import DeviceToken
from channels.adapters import MemoryAdapter
from channels.adapters.base import DeliveryResult, DeliveryStatus, Evidence
from channels.adapters.breaker import CircuitBreaker, CircuitState
from channels.adapters.headers import encode_address
from channels.adapters.fcm import FcmAdapter
from channels.adapters.sendgrid import SendGridAdapter
from channels.adapters.twilio import TwilioAdapter
from channels.consent import suppressed_addresses
from channels.errors import MessageRejected, ProviderConfigError
from channels.feedback import apply_delivery_results
from channels.ratelimit import TokenBucket
from channels.settings import ChannelSettings
from channels.settlement import fingerprint, fingerprint_text
from tests.channels.people import T0, SleepRecorder, add_members
from tests.channels.messages import email, push, sms
from tests.support.fake_providers import FakeFcm, FakeSendGrid, FakeTwilio, Fault, quota_exceeded, twilio_error, unavailable
from tests.support.fake_providers import sendgrid as sg_fake
from tests.support.fake_providers.server import slow_answer
from tests.support.fake_providers import twilio as tw_fake

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def provider_settings(provider_settings: ChannelSettings) -> ChannelSettings:
    """A generous client timeout: a loaded machine must not turn a normal answer into an unknown
    outcome. The tests about timeouts take `short(...)` with answers scripted well past it."""
    return provider_settings.model_copy(update={"request_timeout_seconds": 10.0})


def short(settings: ChannelSettings) -> ChannelSettings:
    return settings.model_copy(update={"request_timeout_seconds": 0.5})


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


def test_sendgrid_timeout_after_sending_is_unknown_and_not_retried(
    provider_settings: ChannelSettings, fake_sendgrid: FakeSendGrid, sleeps: SleepRecorder
) -> None:
    fake_sendgrid.script(slow_answer(1.5))  # taken at once, answered after the 0.5 s client timeout
    [result] = SendGridAdapter(short(provider_settings), bucket=fast(), sleep=sleeps).send([email(5)])
    assert (result.status, result.error_code) == (DeliveryStatus.unknown, "timeout")
    time.sleep(1.2)
    assert len(fake_sendgrid.received) == 1 and len(fake_sendgrid.accepted) == 1  # one request, never a second
    assert sleeps.delays == []


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


def test_twilio_timeout_after_sending_is_unknown_and_not_retried(
    provider_settings: ChannelSettings, fake_twilio: FakeTwilio, sleeps: SleepRecorder
) -> None:
    fake_twilio.script(slow_answer(1.5))  # created at once, answered after the 0.5 s client timeout
    [result] = TwilioAdapter(short(provider_settings), bucket=fast(), sleep=sleeps).send([sms(7)])
    assert (result.status, result.error_code) == (DeliveryStatus.unknown, "timeout")
    time.sleep(1.2)
    assert len(fake_twilio.received) == 1 and sleeps.delays == []


def test_a_connection_reset_after_sending_is_unknown_but_a_refused_one_is_retryable(
    provider_settings: ChannelSettings, sleeps: SleepRecorder
) -> None:
    """A server that reads the whole request then closes without answering: the request arrived."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def swallow() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            conn.settimeout(1.0)
            try:
                conn.recv(65536)
            except OSError:
                pass
            conn.close()

    thread = threading.Thread(target=swallow, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{listener.getsockname()[1]}"
        settings = provider_settings.model_copy(update={"sendgrid_base_url": base, "twilio_base_url": base})
        [mail] = SendGridAdapter(settings, bucket=fast(), sleep=sleeps).send([email(1)])
        [text] = TwilioAdapter(settings, bucket=fast(), sleep=sleeps).send([sms(2)])
    finally:
        stop.set()
        thread.join(2)
        listener.close()
    assert (mail.status, mail.error_code) == (DeliveryStatus.unknown, "connection_lost")
    assert (text.status, text.error_code) == (DeliveryStatus.unknown, "connection_lost")
    assert sleeps.delays == []


def test_twilio_lookup_finds_a_created_message_through_the_sdk_and_proves_absence(
    provider_settings: ChannelSettings, fake_twilio: FakeTwilio, sleeps: SleepRecorder
) -> None:
    adapter = TwilioAdapter(provider_settings, bucket=fast(), sleep=sleeps)
    since = datetime.now(timezone.utc)
    lookups_before = fake_twilio.lookups
    fake_twilio.script(slow_answer(1.5))
    [result] = TwilioAdapter(short(provider_settings), bucket=fast(), sleep=sleeps).send([sms(7, to="+12015550177")])
    assert result.status is DeliveryStatus.unknown
    adapter.send([sms(8, to="+12015550188")])  # another number: never a match
    mark = fingerprint(sms(7).content)
    found = adapter.lookup("+12015550177", mark, since)
    [created] = [m for m in fake_twilio.created if m["to"] == "+12015550177" and m["body"] == sms(7).content.text]
    assert (found.evidence, found.provider_message_id) == (Evidence.accepted, created["sid"])
    # smart encoding changes punctuation, not letters and digits: still the same message
    assert fingerprint_text("Loyalflow: 20% off this week. Reply STOP to opt out.") == \
        fingerprint_text("Loyalflow \u2014 20% off this week! Reply STOP to opt out")
    assert adapter.lookup("+12015550177", fingerprint_text("another text"), since).evidence is Evidence.absent
    assert adapter.lookup("+12015550199", mark, since).evidence is Evidence.absent
    later = datetime.now(timezone.utc) + timedelta(minutes=10)  # created before the window: not ours
    assert adapter.lookup("+12015550177", mark, later).evidence is Evidence.absent
    assert fake_twilio.lookups - lookups_before == 4
    down = TwilioAdapter(provider_settings.model_copy(update={"twilio_base_url": "http://127.0.0.1:9"}),
                         bucket=fast(), sleep=sleeps)
    assert down.lookup("+12015550177", mark, since).evidence is Evidence.none  # no answer proves nothing


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


def test_a_malformed_message_fails_alone_and_the_batch_goes_on(
    provider_settings: ChannelSettings, fake_sendgrid: FakeSendGrid, fake_twilio: FakeTwilio, sleeps: SleepRecorder
) -> None:
    mails = SendGridAdapter(provider_settings, bucket=fast(), sleep=sleeps).send(
        [email(1), dataclasses.replace(sms(2), channel="email"), email(3, to="jos\u00e9@example.com"),
         email(4, to="ana@b\u00fccher.example")])
    texts = TwilioAdapter(provider_settings, bucket=fast(), sleep=sleeps).send(
        [sms(1), dataclasses.replace(email(2), channel="sms"), sms(3)])
    assert [(r.ledger_id, r.status.value, r.error_code) for r in mails] == [
        (1, "accepted", None), (2, "permanent", "wrong_content"), (3, "permanent", "invalid_contact"),
        (4, "accepted", None)]
    assert [(r.ledger_id, r.status.value, r.error_code) for r in texts] == [
        (1, "accepted", None), (2, "permanent", "wrong_content"), (3, "accepted", None)]
    to = [r.body["personalizations"][0]["to"][0]["email"] for r in fake_sendgrid.received]
    assert sorted(to) == ["ana@example.com", "ana@xn--bcher-kva.example"]  # IDNA domain; no SMTPUTF8 at SendGrid
    assert len(fake_twilio.received) == 2


def test_an_unexpected_error_is_that_message_s_unknown_outcome_only(
    provider_settings: ChannelSettings, fake_sendgrid: FakeSendGrid, sleeps: SleepRecorder,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    adapter = SendGridAdapter(provider_settings, bucket=fast(), sleep=sleeps)
    real = adapter.attempt

    def flaky(message: object, body: dict[str, object]) -> object:
        if body["custom_args"]["ledger_id"] == "2":  # type: ignore[index]
            raise KeyError("Ana Lopez <ana@example.com>")  # a bug whose message quotes member data
        return real(message, body)  # type: ignore[arg-type]

    monkeypatch.setattr(adapter, "attempt", flaky)
    with caplog.at_level("DEBUG"):
        results = adapter.send([email(1), email(2), email(3)])
    # it may have reached the provider before the bug: unknown (settled from evidence), never resent
    assert [(r.ledger_id, r.status.value, r.error_code) for r in results] == [
        (1, "accepted", None), (2, "unknown", "adapter_error"), (3, "accepted", None)]
    assert "ana@example.com" not in caplog.text and "Lopez" not in caplog.text
    assert "ledger 2" in caplog.text and "KeyError" in caplog.text


def test_a_provider_that_is_down_opens_the_circuit_and_the_rest_of_the_batch_makes_no_request(
    provider_settings: ChannelSettings, sleeps: SleepRecorder
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    now = [0.0]
    breaker = CircuitBreaker(threshold=3, cooldown=30.0, clock=lambda: now[0])
    settings = provider_settings.model_copy(update={"sendgrid_base_url": closed, "concurrency": 1, "max_attempts": 2})
    adapter = SendGridAdapter(settings, bucket=fast(), sleep=sleeps, breaker=breaker)
    tries = []
    real = adapter.attempt
    adapter.attempt = lambda m, b: (tries.append(m.ledger_id), real(m, b))[1]  # type: ignore[method-assign]
    results = adapter.send([email(i) for i in range(1, 51)])
    assert tries == [1, 1, 2]  # 3 consecutive refused connections open it; no request per message after
    assert breaker.state is CircuitState.open and breaker.opened == 1
    assert [(r.status, r.error_code, r.handed_over) for r in results[:2]] == [
        (DeliveryStatus.retryable, "network", True), (DeliveryStatus.retryable, "circuit_open", True)]
    assert {(r.status, r.error_code, r.handed_over) for r in results[2:]} == {
        (DeliveryStatus.retryable, "circuit_open", False)}
    assert adapter.send([email(99)])[0].error_code == "circuit_open" and len(tries) == 3  # still cooling down
    now[0] = 31.0  # half-open: one trial; it fails, so it opens again
    adapter.send([email(100), email(101)])
    assert tries[3:] == [100] and breaker.state is CircuitState.open and breaker.opened == 2


def test_the_circuit_closes_again_when_the_provider_answers(
    provider_settings: ChannelSettings, fake_sendgrid: FakeSendGrid, sleeps: SleepRecorder
) -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=2, cooldown=10.0, clock=lambda: now[0])
    adapter = SendGridAdapter(provider_settings, bucket=fast(), sleep=sleeps, breaker=breaker)
    breaker.failed(), breaker.failed()
    assert breaker.state is CircuitState.open
    assert adapter.send([email(1)])[0].error_code == "circuit_open" and fake_sendgrid.received == []
    now[0] = 10.5
    results = adapter.send([email(i) for i in range(2, 6)])  # the trial succeeds, the rest follow
    assert all(r.status is DeliveryStatus.accepted for r in results) and breaker.state is CircuitState.closed
    fake_sendgrid.script(sg_fake.server_error(500), sg_fake.server_error(500))  # answers, not transport failures
    adapter.send([email(9)])
    assert breaker.state is CircuitState.closed


def test_adapter_exception_messages_carry_ids_and_codes_only() -> None:
    error = MessageRejected(42, "invalid_contact", "non-ASCII local part needs SMTPUTF8")
    assert str(error) == "ledger 42: invalid_contact (non-ASCII local part needs SMTPUTF8)"
    with pytest.raises(MessageRejected) as caught:
        encode_address(43, "José Ana\x1e <jos\u00e9@exa mple.com>", smtputf8=True)
    assert "Jos" not in str(caught.value) and "exa" not in str(caught.value) and "43" in str(caught.value)


def test_the_memory_adapter_accepts_or_lets_a_handler_decide() -> None:
    plain = MemoryAdapter()
    assert [r.status for r in plain.send([email(1), sms(2)])] == [DeliveryStatus.accepted] * 2
    assert plain.ledger_ids() == [1, 2]
    refusing = MemoryAdapter(lambda m: DeliveryResult(m.ledger_id, DeliveryStatus.permanent, None, "400")
                             if m.channel == "sms" else None, provider="fake")
    results = refusing.send([email(3), sms(4)])
    assert [(r.status.value, r.error_code, r.provider_message_id) for r in results] == [
        ("accepted", None, "fake-3"), ("permanent", "400", None)]


def test_adapters_share_one_base_and_errors_import_no_adapter() -> None:
    """The classification ladder is written once (dispatch.classify_http) and channels/errors.py,
    as read from its source, imports nothing from the adapters: the old circle is gone."""
    import ast
    import inspect

    import channels.errors
    from channels.adapters.provider import ProviderAdapter

    tree = ast.parse(inspect.getsource(channels.errors))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(m and m.startswith("channels.adapters") for m in imported), imported
    for cls in (SendGridAdapter, TwilioAdapter, FcmAdapter):
        assert issubclass(cls, ProviderAdapter)
        assert "send" not in vars(cls), f"{cls.__name__} must use the shared batch loop"


def test_half_open_lets_one_trial_through_while_the_others_wait_for_its_answer() -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=1, cooldown=5.0, clock=lambda: now[0], trial_wait=5.0)
    breaker.failed()
    now[0] = 6.0
    assert breaker.allow() is True and breaker.state is CircuitState.half_open  # the trial
    answers: list[bool] = []
    waiters = [threading.Thread(target=lambda: answers.append(breaker.allow())) for _ in range(3)]
    for t in waiters:
        t.start()
    time.sleep(0.2)
    assert answers == []  # waiting for the trial, not refused at once
    breaker.succeeded()
    for t in waiters:
        t.join(5)
    assert answers == [True, True, True] and breaker.state is CircuitState.closed
    # a failure that started before the latest success is stale: the provider answered since
    breaker.failed(started_at=now[0] - 1.0)
    assert breaker.state is CircuitState.closed
    breaker.abandon()  # nothing to free when closed
    breaker.failed(started_at=now[0] + 1.0)
    assert breaker.state is CircuitState.open


def test_twilio_lookup_pages_through_the_list_as_the_sdk_does(
    provider_settings: ChannelSettings, fake_twilio: FakeTwilio, sleeps: SleepRecorder
) -> None:
    adapter = TwilioAdapter(provider_settings, bucket=fast(), sleep=sleeps)
    since = datetime.now(timezone.utc)
    [ours] = adapter.send([sms(1, to="+12015550150")])  # the oldest: on the last page, newest first
    for i in range(250):  # later messages to the same number, as another journey's would be
        fake_twilio.created.append(dict(fake_twilio.created[0], sid=f"SMother{i}", body=f"other {i}",
                                        _sent=fake_twilio.created[0]["_sent"] + timedelta(seconds=i + 1)))
    before = fake_twilio.lookups
    found = adapter.lookup("+12015550150", fingerprint(sms(1).content), since)
    assert (found.evidence, found.provider_message_id) == (Evidence.accepted, ours.provider_message_id)
    assert fake_twilio.lookups - before == 3  # pages of 100: the SDK followed next_page_uri
