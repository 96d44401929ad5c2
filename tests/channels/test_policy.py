"""Consent policy: properties that hold for every combination, not a handful of examples."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from channels.policy import Allow, ConsentState, Deny, SkipReason, consent_decision

channels = st.sampled_from(["email", "sms", "push"])
purposes = st.sampled_from(["marketing", "transactional", "staff"])
kinds = st.sampled_from(["member", "staff"])
states = st.sampled_from(list(ConsentState))


@given(purposes, channels, kinds, states)
def test_suppressed_addresses_never_receive_anything(purpose, channel, kind, state) -> None:
    assert not isinstance(consent_decision(purpose, channel, kind, state, True), Allow)


@given(channels, kinds, states, st.booleans())
def test_marketing_goes_only_to_opted_in_unsuppressed_members(channel, kind, state, suppressed) -> None:
    decision = consent_decision("marketing", channel, kind, state, suppressed)
    expected = kind == "member" and state is ConsentState.opted_in and not suppressed
    assert isinstance(decision, Allow) == expected


@given(channels, kinds, states, st.booleans())
def test_staff_purpose_reaches_staff_only(channel, kind, state, suppressed) -> None:
    decision = consent_decision("staff", channel, kind, state, suppressed)
    if kind == "member":
        assert decision == Deny(SkipReason.not_staff)
    else:
        assert isinstance(decision, Allow) == (not suppressed)


@given(channels, states, st.booleans())
def test_transactional_goes_unless_suppressed_or_opted_out(channel, state, suppressed) -> None:
    decision = consent_decision("transactional", channel, "member", state, suppressed)
    assert isinstance(decision, Allow) == (not suppressed and state is not ConsentState.opted_out)


@given(purposes, channels, kinds, states, st.booleans())
def test_every_refusal_names_a_reason(purpose, channel, kind, state, suppressed) -> None:
    decision = consent_decision(purpose, channel, kind, state, suppressed)
    assert isinstance(decision, Allow) or (isinstance(decision, Deny) and isinstance(decision.reason, SkipReason))


def test_reasons_distinguish_no_consent_from_opt_out_and_suppression() -> None:
    assert consent_decision("marketing", "sms", "member", ConsentState.unknown, False) == Deny(SkipReason.no_consent)
    assert consent_decision("marketing", "sms", "member", ConsentState.opted_out, False) == Deny(SkipReason.opted_out)
    assert consent_decision("marketing", "sms", "member", ConsentState.opted_in, True) == Deny(SkipReason.suppressed)
    assert consent_decision("marketing", "fax", "member", ConsentState.opted_in, False) == Deny(SkipReason.unknown_channel)
