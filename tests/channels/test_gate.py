"""The gate: one verdict per candidate, every skip with its reason, quiet hours defer."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy.orm import Session

from channels.consent import record_consent, suppress
from channels.gate import Candidate, Defer, Send, Skip, evaluate
from channels.policy import SkipReason
from channels.settings import ChannelSettings
from tests.channels.people import T0, add_members, add_staff

NOON_NY = datetime(2026, 11, 23, 17, 0, tzinfo=timezone.utc)  # 12:00 in New York
NIGHT_NY = datetime(2026, 11, 24, 3, 0, tzinfo=timezone.utc)  # 22:00 in New York


def opt_in(session: Session, member: int, channel: str, purpose: str = "marketing", action: str = "opt_in") -> None:
    record_consent(session, recipient_kind="member", recipient_id=member, channel=channel, purpose=purpose,
                   action=action, source="test", occurred_at=T0)


def cand(member: int, channel: str = "email", purpose: str = "marketing", address: str | None = None,
         **kw: object) -> Candidate:
    default = {"email": f"Member{member}@Example.com", "sms": "+1 201 555 0123", "push": f"tok-{member}"}[channel]
    fields: dict[str, object] = {"time_zone": "America/New_York", "country": "US"} | kw
    return Candidate("member", member, channel, purpose, address if address is not None else default, **fields)  # type: ignore[arg-type]


def test_every_candidate_gets_a_verdict_and_every_skip_a_reason(session: Session, settings: ChannelSettings) -> None:
    add_members(session, 10)
    add_staff(session, 1)
    for m in (1, 4, 5, 9):
        opt_in(session, m, "email")
    opt_in(session, 3, "email", action="opt_out")
    opt_in(session, 2, "sms")
    opt_in(session, 7, "email", purpose="transactional", action="opt_out")
    suppress(session, channel="email", address="member4@example.com", reason="hard_bounce", source="test", at=T0)
    candidates = [
        cand(1),                                           # opted in
        cand(2),                                           # opted in for SMS only
        cand(3),                                           # opted out
        cand(4),                                           # suppressed (matched case-insensitively)
        cand(5, address=" "),                              # no address
        cand(5, address="member5@@example.com"),           # invalid address
        cand(6, purpose="transactional"),                  # no consent needed
        cand(7, purpose="transactional"),                  # opted out of transactional email
        cand(8, purpose="staff"),                          # a member is not staff
        Candidate("staff", 1, "email", "staff", "s@example.com", "UTC"),
        cand(2, channel="sms", address="+33 1 42 68 53 00", country="FR"),  # a landline
        cand(9, time_zone="Mars/Olympus"),
    ]
    verdicts = evaluate(session, NOON_NY, candidates, settings)
    assert verdicts == [
        Send("member1@example.com"),
        Skip(SkipReason.no_consent),
        Skip(SkipReason.opted_out),
        Skip(SkipReason.suppressed),
        Skip(SkipReason.no_contact),
        Skip(SkipReason.invalid_contact),
        Send("member6@example.com"),
        Skip(SkipReason.opted_out),
        Skip(SkipReason.not_staff),
        Send("s@example.com"),
        Skip(SkipReason.invalid_contact),
        Skip(SkipReason.invalid_time_zone),
    ]


def test_quiet_hours_defer_sms_and_push_but_not_email(session: Session, settings: ChannelSettings) -> None:
    add_members(session, 1)
    for channel in ("email", "sms", "push"):
        opt_in(session, 1, channel)
    verdicts = evaluate(session, NIGHT_NY, [cand(1, "sms"), cand(1, "push"), cand(1, "email")],
                        settings.model_copy(update={"frequency_cap": 5}))
    morning = datetime(2026, 11, 24, 13, 0, tzinfo=timezone.utc)  # 08:00 EST
    assert verdicts == [Defer(morning), Defer(morning), Send("member1@example.com")]
    assert evaluate(session, morning, [cand(1, "sms")], settings) == [Send("+12015550123")]


def test_frequency_cap_across_channels_highest_priority_wins(session: Session, settings: ChannelSettings) -> None:
    add_members(session, 2)
    for channel in ("email", "sms", "push"):
        opt_in(session, 1, channel)
        opt_in(session, 2, channel)
    chunk = [
        cand(1, "email", priority=1, recent_marketing_sends=2),
        cand(1, "sms", priority=5, recent_marketing_sends=2),
        cand(1, "push", priority=3, recent_marketing_sends=2),
        cand(1, "email", purpose="transactional", recent_marketing_sends=2),  # never capped
        cand(2, "email", priority=1, recent_marketing_sends=3),
    ]
    verdicts = evaluate(session, NOON_NY, chunk, settings)
    assert verdicts == [
        Skip(SkipReason.frequency_cap),
        Send("+12015550123"),
        Skip(SkipReason.frequency_cap),
        Send("member1@example.com"),
        Skip(SkipReason.frequency_cap),
    ]
