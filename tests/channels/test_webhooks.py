"""Webhooks: signed provider feedback changes suppression, consent and delivery events; forged,
tampered and replayed requests get 403 and change nothing."""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from freezegun import freeze_time
from pydantic import SecretStr
from sqlalchemy import Engine, func, select
from twilio.request_validator import RequestValidator

from audiences.db import session_scope
from audiences.models import Member
from channels.consent import current_consent, record_consent, suppress, suppressed_addresses
from channels.models import ConsentEvent, DeliveryEvent, Suppression
from channels.policy import ConsentState
from channels.settings import ChannelSettings
from channels.unsubscribe import make_token, preferences_url, signed_links, unsubscribe_url
from channels.webhooks.app import create_app
from tests.channels.people import T0, add_members
from tests.support.webhook_signing import AUTH_TOKEN, PUBLIC_KEY, ec_key, sendgrid_headers
from tests.support.webhook_signing import twilio_post as signed_twilio_post

with warnings.catch_warnings():  # Starlette now suggests httpx2 for its test client; httpx is what we ship
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def twilio_post(client: TestClient, settings: ChannelSettings, path: str, params: dict[str, str], token: str = AUTH_TOKEN) -> Any:
    return signed_twilio_post(client, settings.public_base_url, path, params, token)


def counts(engine: Engine) -> tuple[int, int, int]:
    with session_scope(engine) as s:
        return tuple(s.scalar(select(func.count()).select_from(t)) for t in (ConsentEvent, Suppression, DeliveryEvent))  # type: ignore[return-value]


@pytest.fixture()
def hook_settings(settings: ChannelSettings) -> ChannelSettings:
    return settings.model_copy(update={
        "sendgrid_webhook_public_key": SecretStr(PUBLIC_KEY),
        "twilio_auth_token": SecretStr(AUTH_TOKEN),
    })


@pytest.fixture()
def client(sqlite_engine: Engine, hook_settings: ChannelSettings, real_time_event_loops: None) -> Iterator[TestClient]:
    with session_scope(sqlite_engine) as s:
        add_members(s, 3)
        s.get(Member, 2).phone = "+12015550102"  # type: ignore[union-attr]
    app = create_app(sqlite_engine, hook_settings, clock=lambda: NOW)
    with TestClient(app, base_url="https://loyalflow.test") as c:
        yield c


# --- Twilio signature ---------------------------------------------------------------------------


def test_twilios_documented_signature_test_vectors_pass() -> None:
    validator = RequestValidator("12345")
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234", "From": "+12349013030", "To": "+18005551212"}
    # twilio.com/docs/usage/webhooks/webhooks-security
    assert validator.validate(url, params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    # the same example as the official SDKs' own tests spell it (twilio-csharp RequestValidatorTest)
    sdk_params = params | {"Caller": "+14158675309", "From": "+14158675309"}
    assert validator.validate(url, sdk_params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not validator.validate(url, params | {"Digits": "1235"}, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")


# --- SendGrid Event Webhook ---------------------------------------------------------------------


def events_body() -> bytes:
    ts = int(NOW.timestamp()) - 60
    base = {"timestamp": ts, "sg_message_id": "abc123.filterdrecv-1", "journey": "win_back", "step": "email_offer"}
    return json.dumps([
        base | {"event": "delivered", "email": "member1@example.com", "sg_event_id": "e1", "ledger_id": "101", "recipient_id": "1"},
        base | {"event": "open", "email": "member1@example.com", "sg_event_id": "e2", "ledger_id": "101", "recipient_id": "1"},
        base | {"event": "bounce", "type": "bounce", "status": "5.1.1", "email": "Member2@Example.com", "sg_event_id": "e3", "ledger_id": "102", "recipient_id": "2"},
        base | {"event": "bounce", "type": "blocked", "email": "member3@example.com", "sg_event_id": "e4", "ledger_id": "103"},
        base | {"event": "spamreport", "email": "member3@example.com", "sg_event_id": "e5", "ledger_id": "103", "recipient_id": "3", "recipient_kind": "member"},
        base | {"event": "unsubscribe", "email": "member1@example.com", "sg_event_id": "e6", "ledger_id": "101", "recipient_id": "1"},
        {"event": "processed", "email": "member1@example.com", "sg_event_id": "e7"},
        base | {"event": "dropped", "reason": "Bounced Address", "email": "old@example.com", "sg_event_id": "e8"},
        base | {"event": "dropped", "reason": "Unsubscribed Address", "email": "gone@example.com", "sg_event_id": "e9"},
    ]).encode()


def test_sendgrid_events_update_ledger_feedback_and_suppression(client: TestClient, sqlite_engine: Engine) -> None:
    body = events_body()
    response = client.post("/webhooks/sendgrid/events", content=body, headers=sendgrid_headers(body, NOW))
    assert response.status_code == 200 and response.json() == {"received": 9, "new": 8, "skipped": 0}
    with session_scope(sqlite_engine) as s:
        events = s.execute(select(DeliveryEvent.event, DeliveryEvent.ledger_id, DeliveryEvent.provider_message_id).order_by(DeliveryEvent.id)).all()
        assert [(e.value, lid, mid) for e, lid, mid in events] == [
            ("delivered", 101, "abc123"), ("open", 101, "abc123"), ("bounce", 102, "abc123"), ("bounce", 103, "abc123"),
            ("spamreport", 103, "abc123"), ("unsubscribe", 101, "abc123"), ("dropped", None, "abc123"),
            ("dropped", None, "abc123"),
        ]
        assert s.scalars(select(DeliveryEvent.detail)).first() == {"journey": "win_back", "step": "email_offer"}
        # hard bounce and complaint suppress; a "blocked" bounce is temporary and does not
        assert suppressed_addresses(s, "email", ["member1@example.com", "member2@example.com", "member3@example.com",
                                                 "old@example.com", "gone@example.com"]) == {
            "member2@example.com", "member3@example.com", "old@example.com"}
        states = current_consent(s, "member", [1, 2, 3], "email", "marketing")
        assert states == {1: ConsentState.opted_out, 2: ConsentState.unknown, 3: ConsentState.opted_out}

    # the same events delivered again by SendGrid (new request, new signature) are stored once
    later = NOW + timedelta(seconds=30)
    again = client.post("/webhooks/sendgrid/events", content=body, headers=sendgrid_headers(body, later))
    assert again.status_code == 200 and again.json()["new"] == 0


def test_sendgrid_forged_tampered_replayed_and_stale_requests_are_refused(client: TestClient, sqlite_engine: Engine) -> None:
    body = events_body()
    good = sendgrid_headers(body, NOW)
    other_key, _ = ec_key()
    tampered = body.replace(b'"type": "blocked"', b'"type": "bounce"')
    refused = {
        "forged": client.post("/webhooks/sendgrid/events", content=body, headers=sendgrid_headers(body, NOW, other_key)),
        "tampered": client.post("/webhooks/sendgrid/events", content=tampered, headers=good),
        "unsigned": client.post("/webhooks/sendgrid/events", content=body, headers={"Content-Type": "application/json"}),
        "garbage signature": client.post("/webhooks/sendgrid/events", content=body, headers=good | {"X-Twilio-Email-Event-Webhook-Signature": "%%%"}),
        "stale": client.post("/webhooks/sendgrid/events", content=body, headers=sendgrid_headers(body, NOW - timedelta(minutes=10))),
    }
    assert {name: r.status_code for name, r in refused.items()} == dict.fromkeys(refused, 403)
    assert counts(sqlite_engine) == (0, 0, 0)
    assert client.post("/webhooks/sendgrid/events", content=body, headers=good).status_code == 200
    before = counts(sqlite_engine)
    assert client.post("/webhooks/sendgrid/events", content=body, headers=good).status_code == 403  # replay
    assert counts(sqlite_engine) == before


# --- Twilio status and inbound ------------------------------------------------------------------


def test_twilio_inbound_keywords(client: TestClient, sqlite_engine: Engine, hook_settings: ChannelSettings) -> None:
    with session_scope(sqlite_engine) as s:  # START gives back only what STOP took (tests/security)
        record_consent(s, recipient_kind="member", recipient_id=2, channel="sms", purpose="marketing", action="opt_in",
                       source="signup_form", occurred_at=T0 - timedelta(days=1))
    stop = twilio_post(client, hook_settings, "/webhooks/twilio/inbound", {"From": "+12015550102", "To": "+12015550100", "Body": " stop ", "MessageSid": "SM1"})
    assert stop.status_code == 200 and stop.text.endswith("<Response></Response>")
    with session_scope(sqlite_engine) as s:
        assert suppressed_addresses(s, "sms", ["+12015550102"]) == {"+12015550102"}
        assert current_consent(s, "member", [2], "sms", "marketing") == {2: ConsentState.opted_out}
    start = twilio_post(client, hook_settings, "/webhooks/twilio/inbound", {"From": "+12015550102", "To": "+12015550100", "Body": "START", "MessageSid": "SM2"})
    assert start.status_code == 200
    with session_scope(sqlite_engine) as s:
        assert suppressed_addresses(s, "sms", ["+12015550102"]) == set()
        assert current_consent(s, "member", [2], "sms", "marketing") == {2: ConsentState.opted_in}
    help_ = twilio_post(client, hook_settings, "/webhooks/twilio/inbound", {"From": "+12015550102", "To": "+12015550100", "Body": "help", "MessageSid": "SM3"})
    assert "<Message>Loyalflow Rewards: reply STOP to unsubscribe" in help_.text
    for word in ("STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"):
        twilio_post(client, hook_settings, "/webhooks/twilio/inbound", {"From": "+12015550199", "Body": word, "MessageSid": f"SM-{word}"})
        with session_scope(sqlite_engine) as s:
            assert suppressed_addresses(s, "sms", ["+12015550199"]) == {"+12015550199"}, word
            s.query(Suppression).delete()
    for word in ("YES", "UNSTOP"):
        with session_scope(sqlite_engine) as s:
            suppress(s, channel="sms", address="+12015550102", reason="stop", source="t", at=T0)
        twilio_post(client, hook_settings, "/webhooks/twilio/inbound", {"From": "+12015550102", "Body": word, "MessageSid": f"SM-{word}"})
        with session_scope(sqlite_engine) as s:
            assert suppressed_addresses(s, "sms", ["+12015550102"]) == set(), word


def test_twilio_status_callbacks(client: TestClient, sqlite_engine: Engine, hook_settings: ChannelSettings) -> None:
    ok = twilio_post(client, hook_settings, "/webhooks/twilio/status?ledger_id=55", {"MessageSid": "SMa", "MessageStatus": "delivered", "To": "+12015550123"})
    bad = twilio_post(client, hook_settings, "/webhooks/twilio/status?ledger_id=56", {"MessageSid": "SMb", "MessageStatus": "undelivered", "ErrorCode": "30006", "To": "+12015550124"})
    assert (ok.status_code, bad.status_code) == (204, 204)
    with session_scope(sqlite_engine) as s:
        rows = s.execute(select(DeliveryEvent.ledger_id, DeliveryEvent.event, DeliveryEvent.provider_message_id)).all()
        assert [(lid, e.value, mid) for lid, e, mid in rows] == [(55, "delivered", "SMa"), (56, "undelivered", "SMb")]
        assert s.scalars(select(Suppression.reason)).all()[0].value == "invalid_contact"


def test_twilio_forged_tampered_and_replayed_requests_are_refused(client: TestClient, sqlite_engine: Engine, hook_settings: ChannelSettings) -> None:
    params = {"From": "+12015550102", "Body": "STOP", "MessageSid": "SM9"}
    forged = twilio_post(client, hook_settings, "/webhooks/twilio/inbound", params, token="not-our-token")
    url = f"{hook_settings.public_base_url}/webhooks/twilio/inbound"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    tampered = client.post("/webhooks/twilio/inbound", data=params | {"From": "+12015550123"}, headers={"X-Twilio-Signature": signature})
    other_path = client.post("/webhooks/twilio/status", data=params, headers={"X-Twilio-Signature": signature})
    unsigned = client.post("/webhooks/twilio/inbound", data=params)
    assert [r.status_code for r in (forged, tampered, other_path, unsigned)] == [403] * 4
    assert counts(sqlite_engine) == (0, 0, 0)
    assert client.post("/webhooks/twilio/inbound", data=params, headers={"X-Twilio-Signature": signature}).status_code == 200
    before = counts(sqlite_engine)
    assert client.post("/webhooks/twilio/inbound", data=params, headers={"X-Twilio-Signature": signature}).status_code == 403
    # remembered in the database: a restarted (or another) server refuses the replay too, days later
    later = create_app(sqlite_engine, hook_settings, clock=lambda: NOW + timedelta(days=3))
    with TestClient(later, base_url="https://loyalflow.test") as other:
        assert other.post("/webhooks/twilio/inbound", data=params, headers={"X-Twilio-Signature": signature}).status_code == 403
    assert counts(sqlite_engine) == before


# --- unsubscribe and preferences ----------------------------------------------------------------


def form_token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page's form has no form token"
    return found.group(1)


def path_of(url: str) -> str:
    return url.removeprefix("https://loyalflow.test")


def test_unsubscribe_get_shows_a_page_and_one_click_post_opts_out(client: TestClient, sqlite_engine: Engine, hook_settings: ChannelSettings) -> None:
    link = path_of(unsubscribe_url(hook_settings, 1, "email"))
    page = client.get(link)
    assert page.status_code == 200 and '<form method="post"' in page.text
    assert counts(sqlite_engine) == (0, 0, 0)  # a GET (or a mail scanner following it) changes nothing
    one_click = client.post(link, data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200
    with session_scope(sqlite_engine) as s:
        assert current_consent(s, "member", [1], "email", "marketing") == {1: ConsentState.opted_out}
        assert current_consent(s, "member", [1], "sms", "marketing") == {1: ConsentState.unknown}
        assert s.scalar(select(ConsentEvent.source)) == "one_click"
    sms_link = path_of(unsubscribe_url(hook_settings, 2, "sms"))
    form = client.post(sms_link, data={"csrf": form_token(client.get(sms_link).text)})  # the page's own button
    assert "You are unsubscribed" in form.text


def test_signed_links_for_the_render_context_reach_working_pages(client: TestClient, hook_settings: ChannelSettings) -> None:
    links = signed_links(hook_settings)("member", 3, "push", "marketing")
    assert links["unsubscribe_url"].startswith("https://loyalflow.test/unsubscribe/3/")
    assert client.get(path_of(links["unsubscribe_url"])).status_code == 200
    assert client.get(path_of(links["preferences_url"])).status_code == 200


def test_tampered_expired_and_other_members_tokens_are_refused(client: TestClient, sqlite_engine: Engine, hook_settings: ChannelSettings) -> None:
    token = make_token(hook_settings, 1, "email")
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    other_member = f"/unsubscribe/2/{token}"
    forged = make_token(hook_settings.model_copy(update={"unsubscribe_secret": SecretStr("guess")}), 1, "email")
    for path in (f"/unsubscribe/1/{tampered}", other_member, f"/unsubscribe/1/{forged}", "/unsubscribe/x/y"):
        assert client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 403, path
    # a preference token is not an unsubscribe token, and the reverse
    assert client.post(path_of(preferences_url(hook_settings, 1)).replace("/preferences/", "/unsubscribe/")).status_code == 403
    with freeze_time(datetime.now(timezone.utc) - timedelta(days=61)):
        old = make_token(hook_settings, 1, "email")
    expired = client.post(f"/unsubscribe/1/{old}", data={"List-Unsubscribe": "One-Click"})
    assert expired.status_code == 403 and "expired" in expired.text
    assert counts(sqlite_engine) == (0, 0, 0)


def test_preference_page_shows_and_changes_marketing_consent_per_channel(client: TestClient, sqlite_engine: Engine, hook_settings: ChannelSettings) -> None:
    link = path_of(preferences_url(hook_settings, 3))
    page = client.get(link)
    assert page.status_code == 200 and page.text.count('type="checkbox"') == 3 and "checked" not in page.text
    csrf = form_token(page.text)
    saved = client.post(link, data={"email": "on", "push": "on", "csrf": csrf})
    assert "saved" in saved.text and saved.text.count("checked") == 2
    with session_scope(sqlite_engine) as s:
        assert {ch: current_consent(s, "member", [3], ch, "marketing")[3] for ch in ("email", "sms", "push")} == {
            "email": ConsentState.opted_in, "sms": ConsentState.unknown, "push": ConsentState.opted_in}
    client.post(link, data={"push": "on", "csrf": csrf})
    with session_scope(sqlite_engine) as s:
        assert current_consent(s, "member", [3], "email", "marketing")[3] is ConsentState.opted_out
        assert s.scalar(select(func.count()).select_from(ConsentEvent)) == 3  # only changes are recorded


def test_receipts_are_kept_for_the_retention_then_pruned(any_session: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from channels.models import WebhookReceipt
    from channels.webhooks import receipts

    monkeypatch.setattr(receipts, "PRUNE_EVERY", 1)
    keep = timedelta(days=90)
    assert receipts.first_receipt(any_session, "twilio", "sig-a", NOW - timedelta(days=100), keep)
    assert not receipts.first_receipt(any_session, "twilio", "sig-a", NOW - timedelta(days=99), keep)  # a replay
    assert receipts.first_receipt(any_session, "sendgrid", "sig-a", NOW, keep)  # another provider's key space
    assert any_session.scalar(select(func.count()).select_from(WebhookReceipt)) == 1  # the 100-day-old one pruned
