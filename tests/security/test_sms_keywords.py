"""Inbound SMS keywords: a START from a shared phone re-subscribes only members that STOP had
unsubscribed; REVOKE and OPTOUT opt out; numbers match by E.164, however a member's is written."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from audiences.db import session_scope
from channels.consent import current_consent, record_consent, suppressed_addresses
from channels.policy import ConsentState
from tests.security.people import BASE, NOW, add_member
from tests.support.webhook_signing import twilio_post

SHARED = "+12015550123"  # members 1, 2 and 3 of the `client` fixture


def inbound(client: Any, sender: str, word: str, sid: str) -> Any:
    response = twilio_post(client, BASE, "/webhooks/twilio/inbound", {"From": sender, "To": "+12015550100", "Body": word, "MessageSid": sid})
    assert response.status_code == 200, response.text
    return response


def sms_states(engine: Engine, ids: list[int]) -> dict[int, ConsentState]:
    with session_scope(engine) as s:
        return current_consent(s, "member", ids, "sms", "marketing")


def test_start_from_a_shared_phone_resubscribes_only_members_stop_unsubscribed(client: Any, sqlite_engine: Engine) -> None:
    with session_scope(sqlite_engine) as s:
        earlier = NOW - timedelta(days=30)
        record_consent(s, recipient_kind="member", recipient_id=1, channel="sms", purpose="marketing", action="opt_in",
                       source="signup_form", occurred_at=earlier)
        record_consent(s, recipient_kind="member", recipient_id=3, channel="sms", purpose="marketing", action="opt_in",
                       source="signup_form", occurred_at=earlier)
        record_consent(s, recipient_kind="member", recipient_id=3, channel="sms", purpose="marketing", action="opt_out",
                       source="preference_page", occurred_at=earlier + timedelta(days=1))
    inbound(client, SHARED, "STOP", "SM1")
    inbound(client, SHARED, "QUIT", "SM1b")  # a second opt-out keyword changes nothing below
    assert sms_states(sqlite_engine, [1, 2, 3]) == {1: ConsentState.opted_out, 2: ConsentState.opted_out, 3: ConsentState.opted_out}
    inbound(client, SHARED, "YES", "SM2")
    # 1 had opted in and STOP withdrew it: back in; 2 never opted in; 3 had opted out on the page before
    assert sms_states(sqlite_engine, [1, 2, 3]) == {1: ConsentState.opted_in, 2: ConsentState.opted_out, 3: ConsentState.opted_out}
    with session_scope(sqlite_engine) as s:
        assert suppressed_addresses(s, "sms", [SHARED]) == set()  # the number itself may receive again


def test_start_without_an_earlier_stop_grants_nobody_consent(client: Any, sqlite_engine: Engine) -> None:
    for word, sid in (("START", "SM3"), ("UNSTOP", "SM4"), ("yes", "SM5")):
        inbound(client, SHARED, word, sid)
    assert sms_states(sqlite_engine, [1, 2, 3]) == dict.fromkeys([1, 2, 3], ConsentState.unknown)


def test_revoke_and_optout_are_opt_out_keywords(client: Any, sqlite_engine: Engine) -> None:
    with session_scope(sqlite_engine) as s:
        add_member(s, 10, phone="+12015550110")
        add_member(s, 11, phone="+12015550111")
        for member_id in (10, 11):
            record_consent(s, recipient_kind="member", recipient_id=member_id, channel="sms", purpose="marketing",
                           action="opt_in", source="signup_form", occurred_at=NOW - timedelta(days=1))
    inbound(client, "+12015550110", "REVOKE", "SM6")
    inbound(client, "+12015550111", " optout. ", "SM7")
    with session_scope(sqlite_engine) as s:
        assert suppressed_addresses(s, "sms", ["+12015550110", "+12015550111"]) == {"+12015550110", "+12015550111"}
    assert sms_states(sqlite_engine, [10, 11]) == {10: ConsentState.opted_out, 11: ConsentState.opted_out}


def test_stop_matches_members_by_e164_however_their_number_is_written(client: Any, sqlite_engine: Engine) -> None:
    written = {20: "+1 (201) 555-0188", 21: "201-555-0188", 22: "+1.201.555.0188", 23: "+1 (201) 555-0189"}
    with session_scope(sqlite_engine) as s:
        for member_id, phone in written.items():
            add_member(s, member_id, phone=phone)
            record_consent(s, recipient_kind="member", recipient_id=member_id, channel="sms", purpose="marketing",
                           action="opt_in", source="signup_form", occurred_at=NOW - timedelta(days=1))
    inbound(client, "+12015550188", "STOP", "SM8")
    assert sms_states(sqlite_engine, list(written)) == {20: ConsentState.opted_out, 21: ConsentState.opted_out,
                                                        22: ConsentState.opted_out, 23: ConsentState.opted_in}
    inbound(client, "+12015550188", "START", "SM9")
    assert sms_states(sqlite_engine, list(written)) == dict.fromkeys(written, ConsentState.opted_in)


def test_numbers_are_matched_by_e164_on_every_database(engine: Engine) -> None:
    from channels.webhooks.twilio_sms import recipients_with_phone

    with session_scope(engine) as s:
        for member_id, phone in {30: "+1 (201) 555-0177", 31: "(201) 555-0177", 32: "+44 7911 123456", 33: None}.items():
            add_member(s, member_id, phone=phone)
        assert sorted(recipients_with_phone(s, "+12015550177")) == [("member", 30), ("member", 31)]
        assert recipients_with_phone(s, "+447911123456") == [("member", 32)]
        assert recipients_with_phone(s, "not a number") == []
