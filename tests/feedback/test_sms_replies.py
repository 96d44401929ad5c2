"""SMS survey replies on the Twilio inbound webhook (signed with the official SDK's RequestValidator):
a score answers the latest survey SMS sent to that number; STOP/START/HELP behave exactly as before."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from audiences.db import session_scope
from audiences.models import Member
from channels.consent import current_consent, record_consent, suppressed_addresses
from channels.survey_models import SurveyAnswer
from channels.surveys import SURVEY, LinkClaim, record_invite
from tests.channels.people import add_members
from tests.feedback.conftest import NOW, Clock, twilio_reply

PHONE = "+12015550199"


@pytest.fixture()
def invited(sqlite_engine: Engine) -> Engine:
    """Member 1 (whose number is PHONE, written loosely) got two survey SMS and an email; member 2 none."""
    with session_scope(sqlite_engine) as s:
        add_members(s, 2)
        s.get(Member, 1).phone = "+1 (201) 555-0199"  # type: ignore[union-attr]
        s.get(Member, 1).locale = "de"  # type: ignore[union-attr]
        s.get(Member, 2).phone = "+12015550100"  # type: ignore[union-attr]
        record_invite(s, LinkClaim(SURVEY, 41, "member", 1, "tier_up", "nps", 0, 10), NOW - timedelta(days=20), "sms")
        record_invite(s, LinkClaim(SURVEY, 42, "member", 1, "tier_up", "nps", 0, 10), NOW - timedelta(days=2), "sms")
        # a later survey by email: a text message does not answer it
        record_invite(s, LinkClaim(SURVEY, 43, "member", 1, "tier_up", "nps", 0, 10), NOW - timedelta(days=1), "email")
        record_consent(s, recipient_kind="member", recipient_id=1, channel="sms", purpose="marketing",
                       action="opt_in", source="form", occurred_at=NOW - timedelta(days=30))
    return sqlite_engine


def all_answers(engine: Engine) -> list[tuple[int, int, int, str, str | None, int]]:
    with session_scope(engine) as s:
        return [(a.ledger_id, a.recipient_id, a.score, a.channel, a.comment, a.revisions)
                for a in s.scalars(select(SurveyAnswer).order_by(SurveyAnswer.id))]


def test_a_reply_answers_the_latest_survey_sms_to_that_number(invited: Engine, serve) -> None:  # type: ignore[no-untyped-def]
    clock = Clock(NOW)
    client = serve(invited, clock)
    reply = twilio_reply(client, PHONE, "4 the queue was long", "SM1")
    assert reply.status_code == 200 and "Vielen Dank" in reply.text  # thanked in the member's language
    assert all_answers(invited) == [(42, 1, 4, "sms", "the queue was long", 0)]

    clock.now = NOW + timedelta(hours=1)
    assert twilio_reply(client, PHONE, "9", "SM2").status_code == 200  # changed their mind: same message
    assert all_answers(invited) == [(42, 1, 9, "sms", "the queue was long", 1)]


def test_replies_that_answer_nothing_change_nothing(invited: Engine, serve) -> None:  # type: ignore[no-untyped-def]
    client = serve(invited, Clock(NOW))
    out_of_scale = twilio_reply(client, PHONE, "42", "SM3")
    assert "0 bis 10" in out_of_scale.text  # asked again, in German
    stranger = twilio_reply(client, "+12015550100", "8", "SM4")  # member 2 was never sent a survey
    assert stranger.status_code == 200 and "<Message>" not in stranger.text
    chat = twilio_reply(client, PHONE, "see you tomorrow", "SM5")
    assert "<Message>" not in chat.text
    assert all_answers(invited) == []


def test_an_old_survey_sms_is_not_answered(invited: Engine, serve) -> None:  # type: ignore[no-untyped-def]
    client = serve(invited, Clock(NOW + timedelta(days=13)))  # the 2-day-old invite is now 15 days old
    assert "<Message>" not in twilio_reply(client, PHONE, "7", "SM6").text
    assert all_answers(invited) == []


def test_stop_start_and_help_are_unchanged_by_survey_replies(invited: Engine, serve, app_settings) -> None:  # type: ignore[no-untyped-def]
    client = serve(invited, Clock(NOW))
    stop = twilio_reply(client, PHONE, "STOP", "SM7")
    assert stop.status_code == 200 and "<Message>" not in stop.text
    with session_scope(invited) as s:
        assert PHONE in suppressed_addresses(s, "sms", [PHONE])
        assert current_consent(s, "member", [1], "sms", "marketing")[1].value == "opted_out"
    help_ = twilio_reply(client, PHONE, "HELP", "SM8")
    assert "reply STOP to unsubscribe" in help_.text
    start = twilio_reply(client, PHONE, "START", "SM9")
    assert start.status_code == 200
    with session_scope(invited) as s:
        assert PHONE not in suppressed_addresses(s, "sms", [PHONE])
        assert current_consent(s, "member", [1], "sms", "marketing")[1].value == "opted_in"
    assert all_answers(invited) == []


def test_unsigned_or_replayed_replies_are_refused(invited: Engine, serve) -> None:  # type: ignore[no-untyped-def]
    client = serve(invited, Clock(NOW))
    forged = client.post("/webhooks/twilio/inbound", data={"From": PHONE, "Body": "0", "MessageSid": "SMx"},
                         headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"})
    assert forged.status_code == 403
    assert twilio_reply(client, PHONE, "6", "SM10").status_code == 200
    assert twilio_reply(client, PHONE, "6", "SM10").status_code == 403  # the same signed request again
    assert all_answers(invited) == [(42, 1, 6, "sms", None, 0)]
