"""POST /v1/events through the real `loyalflow serve` app: auth, limits, per-event results."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from audiences.events import add_wake_listener
from audiences.models import Event
from channels.webhooks import events_api
from tests.events.events_data import AUTH, KEY, NOW, add_members, counts, purchase


def test_no_key_configured_answers_503_and_stores_nothing(sqlite_engine: Engine, client_for) -> None:  # type: ignore[no-untyped-def]
    add_members(sqlite_engine, 1)
    answer = client_for(sqlite_engine, key=None).post("/v1/events", json=purchase("k1", 1, NOW), headers=AUTH)
    assert answer.status_code == 503
    assert "LOYALFLOW_EVENTS_API_KEY" in answer.json()["error"]
    assert counts(sqlite_engine) == (0, 0, 0)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-key"}, {"Authorization": f"Basic {KEY}"},
                                     {"Authorization": f"Bearer {KEY}x"}, {"Authorization": KEY}])
def test_missing_or_wrong_key_is_refused_and_nothing_is_stored(sqlite_engine: Engine, client_for, headers) -> None:  # type: ignore[no-untyped-def]
    add_members(sqlite_engine, 1)
    answer = client_for(sqlite_engine).post("/v1/events", json=purchase("k1", 1, NOW), headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert counts(sqlite_engine) == (0, 0, 0)


def test_oversized_body_is_refused_with_413_and_nothing_is_stored(sqlite_engine: Engine, client_for) -> None:  # type: ignore[no-untyped-def]
    add_members(sqlite_engine, 1)
    client = client_for(sqlite_engine)
    big = [purchase(f"k{i}", 1, NOW, note="x" * 2000) for i in range(600)]  # ~1.3 MB, each event valid
    body = json.dumps(big).encode()
    assert len(body) > events_api.MAX_BODY_BYTES
    assert client.post("/v1/events", content=body, headers=AUTH | {"content-type": "application/json"}).status_code == 413

    def chunks():  # no Content-Length: the limit is enforced while reading the stream
        for start in range(0, len(body), 65536):
            yield body[start:start + 65536]

    assert client.post("/v1/events", content=chunks(), headers=AUTH).status_code == 413
    too_many = [purchase(f"k{i}", 1, NOW) for i in range(events_api.MAX_BATCH + 1)]
    answer = client.post("/v1/events", json=too_many, headers=AUTH)
    assert answer.status_code == 413 and "at most 1000" in answer.json()["error"]
    assert counts(sqlite_engine) == (0, 0, 0)


def test_malformed_bodies_get_400(sqlite_engine: Engine, client_for) -> None:  # type: ignore[no-untyped-def]
    client = client_for(sqlite_engine)
    for body in (b"{not json", b"42", b'{"events": {}}', b"[]"):
        answer = client.post("/v1/events", content=body, headers=AUTH)
        assert answer.status_code == 400, body
        assert answer.json()["error"]
    assert counts(sqlite_engine) == (0, 0, 0)


def test_single_batch_and_wrapped_forms_and_per_event_results(engine: Engine, client_for) -> None:  # type: ignore[no-untyped-def]
    add_members(engine, 3)
    client = client_for(engine)
    one = client.post("/v1/events", json=purchase("a", 1, NOW - timedelta(minutes=1)), headers=AUTH)
    assert one.status_code == 200
    assert one.json()["accepted"] == 1 and one.json()["results"][0]["status"] == "accepted"
    batch = [
        purchase("a", 1, NOW),                                              # 0 duplicate of the first request
        purchase("b", 2, NOW),                                              # 1 accepted
        purchase("b", 2, NOW),                                              # 2 duplicate within the batch
        {**purchase("c", 3, NOW), "occurred_at": "2026-12-01T11:00:00"},   # 3 naive time
        purchase("d", 99, NOW),                                             # 4 unknown member
        {"member_id": "3", "occurred_at": "yesterday", "idempotency_key": "has space",
         "properties": [], "memberId": 3},                                  # 5 everything wrong
        purchase("e", 3, NOW + timedelta(hours=1)),                         # 6 in the future
        purchase("f", 3, NOW, event_id=5),                                  # 7 reserved property name
    ]
    answer = client.post("/v1/events", json={"events": batch}, headers=AUTH)
    assert answer.status_code == 207
    results = answer.json()["results"]
    assert [r["index"] for r in results] == list(range(len(batch)))
    assert [r["status"] for r in results] == ["duplicate", "accepted", "duplicate", "error", "error", "error",
                                              "error", "error"]
    fields = {r["index"]: {e["field"] for e in r["errors"]} for r in results if r["status"] == "error"}
    assert fields == {3: {"occurred_at"}, 4: {"member_id"}, 5: {"type", "member_id", "occurred_at",
                                                                 "idempotency_key", "properties", "memberId"},
                      6: {"occurred_at"}, 7: {"properties"}}
    naive = next(e for e in results[3]["errors"])
    assert "time zone" in naive["message"]
    assert answer.json() | {"results": None} == {"accepted": 1, "duplicate": 2, "error": 5, "results": None}
    with Session(engine) as s:
        stored = s.execute(select(Event.idempotency_key, Event.member_id, Event.source).order_by(Event.id)).all()
    assert stored == [("a", 1, "api"), ("b", 2, "api")]


def test_error_messages_and_logs_hold_no_property_values(sqlite_engine: Engine, client_for, caplog) -> None:  # type: ignore[no-untyped-def]
    add_members(sqlite_engine, 1)
    secret = "jane.doe@example.org"
    bad = {**purchase("x", 1, NOW, email=secret), "occurred_at": secret, "type": secret}
    with caplog.at_level("DEBUG"):
        answer = client_for(sqlite_engine).post("/v1/events", json=[bad], headers=AUTH)
    assert answer.status_code == 207
    assert secret not in answer.text
    assert secret not in caplog.text


def test_a_wake_listener_is_called_once_events_are_stored(sqlite_engine: Engine, client_for) -> None:  # type: ignore[no-untyped-def]
    add_members(sqlite_engine, 1)
    calls: list[int] = []
    remove = add_wake_listener(lambda: calls.append(counts(sqlite_engine)[0]))
    try:
        client = client_for(sqlite_engine)
        client.post("/v1/events", json=purchase("w1", 1, NOW), headers=AUTH)
        client.post("/v1/events", json=purchase("w1", 1, NOW), headers=AUTH)  # duplicate: nothing new, no wake
    finally:
        remove()
    assert calls == [1]  # called after the commit: the pass it wakes sees the event
