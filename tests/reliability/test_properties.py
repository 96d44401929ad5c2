"""Property-based tests (hypothesis) that extend, not repeat, tests/channels and tests/templates:
the SMS segmenter on any Unicode text, consent over any history of events (as stored and as the
gate applies it), and the unsubscribe token round-trip, tampering and expiry."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from channels.consent import current_consent, record_consent, suppress
from channels.gate import Candidate, Send, Skip, evaluate
from channels.policy import ConsentState
from channels.settings import ChannelSettings
from channels.unsubscribe import InvalidUnsubscribeToken, make_token, read_token
from templates.sms import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    MULTI,
    SINGLE,
    count_segments,
    normalize_spaces,
)
from tests.reliability.support import NOW, populate

# --- SMS segmenter ------------------------------------------------------------------------------

any_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=400)
mixed = st.text(st.sampled_from(sorted(GSM7_BASIC | GSM7_EXTENSION) + ["ê", "😀", "م", "\u00a0", "€", "ç"]), max_size=400)


@given(st.one_of(any_text, mixed))
def test_segments_bound_the_units_of_any_text(text: str) -> None:
    count = count_segments(text)
    gsm = all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)
    assert count.encoding == ("GSM-7" if gsm else "UCS-2")
    if not gsm:
        assert count.units == len(text.encode("utf-16-le")) // 2  # UCS-2 bills UTF-16 code units
    if count.units == 0:
        assert count.segments == 0
    elif count.units <= SINGLE[count.encoding]:
        assert count.segments == 1
    else:
        capacity = MULTI[count.encoding]
        # never fewer than the units need; a pair kept whole wastes at most one unit per segment
        assert math.ceil(count.units / capacity) <= count.segments <= math.ceil(count.units / (capacity - 1))


@given(st.one_of(any_text, mixed), st.one_of(any_text, mixed))
def test_appending_text_never_lowers_the_bill(a: str, b: str) -> None:
    assert count_segments(a + b).segments >= count_segments(a).segments


@given(mixed)
def test_normalising_spaces_never_costs_more(text: str) -> None:
    assert count_segments(normalize_spaces(text)).segments <= count_segments(text).segments


# --- consent over any history -------------------------------------------------------------------

events = st.lists(st.tuples(st.sampled_from(["opt_in", "opt_out"]), st.integers(-500, 0)), max_size=8)


@pytest.fixture()
def consent_db(sqlite_engine: Engine) -> Iterator[Engine]:
    populate(sqlite_engine, 1)
    yield sqlite_engine


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=events, suppressed=st.booleans(), purpose=st.sampled_from(["marketing", "transactional"]),
       channel=st.sampled_from(["email", "sms"]))
def test_the_latest_event_decides_and_the_gate_obeys_it(consent_db: Engine, history: list[tuple[str, int]],
                                                        suppressed: bool, purpose: str, channel: str) -> None:
    settings = ChannelSettings(_env_file=None, quiet_hours_sms="", frequency_cap=100)
    address = {"email": "m1@example.com", "sms": "+12015550123"}[channel]
    with Session(consent_db) as s:
        for action, minutes in history:  # inserted in the order given, not in time order
            record_consent(s, recipient_kind="member", recipient_id=1, channel=channel, purpose=purpose,
                           action=action, source="test", occurred_at=NOW + timedelta(minutes=minutes))
        if suppressed:
            suppress(s, channel=channel, address=address, reason="spam_complaint", source="test", at=NOW)
        # latest occurred_at wins; among equal instants, the one recorded last
        latest = max(range(len(history)), key=lambda i: (history[i][1], i)) if history else None
        expected = {None: ConsentState.unknown, "opt_in": ConsentState.opted_in, "opt_out": ConsentState.opted_out}[
            history[latest][0] if latest is not None else None]
        assert current_consent(s, "member", [1], channel, purpose) == {1: expected}
        verdict = evaluate(s, NOW, [Candidate(recipient_kind="member", recipient_id=1, channel=channel, purpose=purpose,
                                              address=address, time_zone="America/New_York", country="US")], settings)[0]
        allowed = not suppressed and (expected is ConsentState.opted_in if purpose == "marketing"
                                      else expected is not ConsentState.opted_out)
        assert isinstance(verdict, Send) == allowed
        assert isinstance(verdict, (Send, Skip)) and (allowed or verdict.reason)  # type: ignore[union-attr]
        s.rollback()


# --- unsubscribe tokens -------------------------------------------------------------------------

SETTINGS = ChannelSettings(_env_file=None, unsubscribe_secret=SecretStr("property-secret"))
ids = st.integers(1, 2**62)
token_channels = st.sampled_from(["email", "sms", "push", "*"])
kinds = st.sampled_from(["member", "staff"])


@given(ids, token_channels, kinds)
def test_a_token_reads_back_for_its_member_only(recipient_id: int, channel: str, kind: str) -> None:
    token = make_token(SETTINGS, recipient_id, channel, kind)
    claim = read_token(SETTINGS, token, recipient_id)
    assert (claim.recipient_kind, claim.recipient_id, claim.channel) == (kind, recipient_id, channel)
    with pytest.raises(InvalidUnsubscribeToken):
        read_token(SETTINGS, token, recipient_id + 1)
    with pytest.raises(InvalidUnsubscribeToken):
        read_token(SETTINGS.model_copy(update={"unsubscribe_secret": SecretStr("another")}), token, recipient_id)


@given(ids, token_channels, st.data())
def test_a_tampered_token_is_refused_or_says_exactly_the_same(recipient_id: int, channel: str, data: st.DataObject) -> None:
    token = make_token(SETTINGS, recipient_id, channel)
    i = data.draw(st.integers(0, len(token) - 1))
    c = data.draw(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."))
    assume(token[i] != c)
    tampered = token[:i] + c + token[i + 1:]
    try:
        claim = read_token(SETTINGS, tampered, recipient_id)
    except InvalidUnsubscribeToken:
        return
    # base64's unused low bits can change without changing a byte: then nothing changed
    assert (claim.recipient_id, claim.channel) == (recipient_id, channel)


MAX_AGE = SETTINGS.unsubscribe_token_max_age_days * 86400


@hsettings(max_examples=40, deadline=None)
@given(ids, st.integers(-3 * 86400, 2 * MAX_AGE))
def test_a_token_expires_after_its_max_age_and_never_comes_from_the_future(recipient_id: int, age: int) -> None:
    issued = datetime(2026, 6, 1, tzinfo=UTC)
    with freeze_time(issued):
        token = make_token(SETTINGS, recipient_id, "email")
    with freeze_time(issued + timedelta(seconds=age)):
        if 0 <= age <= MAX_AGE:
            assert read_token(SETTINGS, token, recipient_id).recipient_id == recipient_id
        else:
            with pytest.raises(InvalidUnsubscribeToken):
                read_token(SETTINGS, token, recipient_id)
