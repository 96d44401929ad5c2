"""Frequency cap (higher priority wins) and contact validity."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from channels.contacts import check_contact, check_email, check_sms_number, normalise
from channels.frequency import FrequencyCap, allot, within_cap


def test_default_cap_is_three_per_window() -> None:
    assert within_cap(2, priority=0)
    assert not within_cap(3, priority=0)
    assert within_cap(5, priority=100, cap=FrequencyCap(bypass_priority=100))


def test_higher_priority_wins_the_remaining_slots() -> None:
    requests = [("tips", 1), ("offer", 5), ("survey", 1), ("points", 9)]
    assert allot(requests, recent_marketing_sends=1) == {"points", "offer"}
    assert allot(requests, recent_marketing_sends=3) == set()
    assert allot(requests, recent_marketing_sends=0) == {"points", "offer", "tips"}  # tie: first given wins


@given(st.lists(st.integers(-5, 5), max_size=8), st.integers(0, 6), st.integers(0, 5))
def test_allot_never_exceeds_the_cap_and_prefers_priority(priorities, recent, limit) -> None:
    cap = FrequencyCap(limit=limit)
    requests = list(enumerate(priorities))
    granted = allot(requests, recent, cap)
    assert len(granted) == max(0, min(len(requests), limit - recent))
    refused = [p for k, p in requests if k not in granted]
    assert all(p >= max(refused, default=-99) for k, p in requests if k in granted)


def test_email_syntax_only_and_normalised() -> None:
    assert check_email("Ana@Example.COM").address == "ana@example.com"
    assert not check_email("ana@@example.com").ok
    assert check_email("someone@no-such-domain-xq7z3.com").ok  # syntax only: no DNS lookup
    assert check_contact("email", None) is None and check_contact("email", "  ") is None


def test_sms_needs_a_mobile_number() -> None:
    assert check_sms_number("+33 6 12 34 56 78").address == "+33612345678"  # French mobile
    assert check_sms_number("06 12 34 56 78", "FR").address == "+33612345678"
    landline = check_sms_number("+33 1 42 68 53 00")  # Paris landline
    assert not landline.ok and landline.problem == "not a mobile number"
    assert check_sms_number("+1 201 555 0123").ok  # US: fixed-line-or-mobile is accepted
    assert not check_sms_number("12345").ok
    assert not check_sms_number("not a number").ok


def test_normalise_is_the_suppression_key() -> None:
    assert normalise("sms", "+1 (201) 555-0123") == "+12015550123"
    assert normalise("email", " X@Y.org ") == "x@y.org"
    assert normalise("push", " tok ") == "tok"
