"""Webhook endpoints: the Starlette shape (issue 15), HEAD never unsubscribes, one bad event does not
lose a signed SendGrid batch, and the other valid ECDSA form of a signature is still a replay."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, func, select

from audiences.db import session_scope
from channels.consent import current_consent
from channels.models import ConsentEvent, DeliveryEvent, Suppression
from channels.policy import ConsentState
from channels.settings import ChannelSettings
from channels.unsubscribe import unsubscribe_url
from tests.security.people import BASE, NOW
from tests.support.webhook_signing import SIGNATURE_HEADER, malleate, sendgrid_headers


def counts(engine: Engine) -> tuple[int, int, int]:
    with session_scope(engine) as s:
        return tuple(s.scalar(select(func.count()).select_from(t)) for t in (ConsentEvent, Suppression, DeliveryEvent))  # type: ignore[return-value]


# --- shape ---------------------------------------------------------------------------------------


def test_endpoints_are_module_level_and_read_their_dependencies_from_app_state(sqlite_engine: Engine, hook_settings: ChannelSettings) -> None:
    from channels.webhooks import endpoints, receipts
    from channels.webhooks.app import create_app

    app = create_app(sqlite_engine, hook_settings)
    assert app.state.engine is sqlite_engine and app.state.settings is hook_settings
    assert app.state.sendgrid is not None and app.state.twilio is not None  # the verifiers, built once
    for route in app.routes:
        endpoint = getattr(route, "endpoint", None)
        if endpoint is not None and getattr(endpoint, "__module__", "") != "channels.webhooks.events_api":  # events_api: its own module
            assert "<locals>" not in endpoint.__qualname__, endpoint.__qualname__
    # one receipt-then-apply step, shared by SendGrid events, Twilio status and inbound
    assert callable(receipts.apply_once)
    assert {"sendgrid_events", "twilio_status", "twilio_inbound"} <= set(vars(endpoints))


# --- HEAD and other methods ------------------------------------------------------------------------


def test_head_on_an_unsubscribe_link_never_unsubscribes(client: Any, sqlite_engine: Engine, hook_settings: ChannelSettings) -> None:
    link = unsubscribe_url(hook_settings, 1, "email").removeprefix(BASE)
    head = client.head(link)
    assert head.status_code in (200, 405)
    for method in ("PUT", "PATCH", "DELETE"):
        assert client.request(method, link, data={"List-Unsubscribe": "One-Click"}).status_code == 405, method
    assert counts(sqlite_engine) == (0, 0, 0)
    with session_scope(sqlite_engine) as s:
        assert current_consent(s, "member", [1], "email", "marketing") == {1: ConsentState.unknown}
    # the RFC 8058 one-click POST still works
    assert client.post(link, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    with session_scope(sqlite_engine) as s:
        assert current_consent(s, "member", [1], "email", "marketing") == {1: ConsentState.opted_out}


# --- SendGrid batches --------------------------------------------------------------------------------


def batch(*bad: dict[str, Any]) -> bytes:
    ts = int(NOW.timestamp()) - 60
    good = [
        {"event": "delivered", "email": "member1@example.com", "sg_event_id": "g1", "ledger_id": "101", "timestamp": ts},
        {"event": "bounce", "type": "bounce", "email": "member2@example.com", "sg_event_id": "g2", "timestamp": ts},
    ]
    return json.dumps([good[0], *bad, good[1]]).encode()


def test_one_malformed_event_is_skipped_and_counted_and_the_rest_applied(client: Any, sqlite_engine: Engine) -> None:
    malformed = [
        {"event": "bounce", "email": "x@example.com", "sg_event_id": "b1", "timestamp": 10**20},  # year out of range
        {"event": "spamreport", "email": ["not", "a", "string"], "sg_event_id": "b2", "recipient_id": "1"},
        {"event": "delivered", "sg_event_id": {"nested": 1}, "ledger_id": "5"},
        {"event": "delivered", "sg_event_id": "b4", "ledger_id": 10**30},  # beyond any integer column
    ]
    body = batch(*malformed)
    response = client.post("/webhooks/sendgrid/events", content=body, headers=sendgrid_headers(body, NOW))
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 6, "new": 2, "skipped": 4}
    with session_scope(sqlite_engine) as s:
        assert sorted(s.scalars(select(DeliveryEvent.provider_event_id))) == ["sendgrid:g1", "sendgrid:g2"]
        assert s.scalars(select(Suppression.address)).all() == ["member2@example.com"]


def test_the_other_valid_ecdsa_form_of_an_applied_signature_is_a_replay(client: Any, sqlite_engine: Engine) -> None:
    body = batch()
    headers = sendgrid_headers(body, NOW)
    assert client.post("/webhooks/sendgrid/events", content=body, headers=headers).status_code == 200
    applied = counts(sqlite_engine)
    twin = headers | {SIGNATURE_HEADER: malleate(headers[SIGNATURE_HEADER])}
    assert twin[SIGNATURE_HEADER] != headers[SIGNATURE_HEADER]
    replay = client.post("/webhooks/sendgrid/events", content=body, headers=twin)
    assert replay.status_code == 403
    assert counts(sqlite_engine) == applied


def test_a_database_outage_fails_the_batch_with_5xx_so_sendgrid_retries_it(
        sqlite_engine: Engine, hook_settings: ChannelSettings, monkeypatch: Any) -> None:
    from fastapi.testclient import TestClient
    from sqlalchemy.exc import OperationalError

    from channels.webhooks import sendgrid_events
    from channels.webhooks.app import create_app

    real_apply = sendgrid_events._apply

    def unavailable(session: Any, event: Any) -> int:
        raise OperationalError("INSERT INTO delivery_events", {}, Exception("database is locked"))

    body = batch()
    headers = sendgrid_headers(body, NOW)
    app = create_app(sqlite_engine, hook_settings, clock=lambda: NOW)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as c:
        monkeypatch.setattr(sendgrid_events, "_apply", unavailable)
        failed = c.post("/webhooks/sendgrid/events", content=body, headers=headers)
        assert failed.status_code >= 500  # not 200 "skipped": SendGrid must send this batch again
        assert counts(sqlite_engine) == (0, 0, 0)  # nothing half-applied, not even the receipt
        monkeypatch.setattr(sendgrid_events, "_apply", real_apply)
        retried = c.post("/webhooks/sendgrid/events", content=body, headers=headers)  # the same signed batch
        assert retried.status_code == 200, retried.text  # not refused as a replay
        assert retried.json() == {"received": 2, "new": 2, "skipped": 0}
