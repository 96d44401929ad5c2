"""The gate the journeys engine calls per chunk before sending: may each candidate go, now?

One verdict per candidate, in order: Send (with the normalised address), Skip(reason) or
Defer(until). Consent and suppression are loaded for the whole chunk in a few queries; the rules
themselves are the pure functions of policy, contacts, frequency and quiet_hours.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from channels.consent import current_consent, suppressed_addresses
from channels.contacts import check_contact
from channels.frequency import FrequencyCap, allot
from channels.policy import CHANNELS, ConsentState, Deny, SkipReason, consent_decision
from channels.quiet_hours import QuietWindow, UnknownTimeZone, next_allowed, rules_from_settings, zone
from channels.settings import ChannelSettings


@dataclass(frozen=True, slots=True)
class Candidate:
    recipient_kind: str
    recipient_id: int
    channel: str
    purpose: str
    address: str | None
    time_zone: str
    country: str | None = None
    priority: int = 0
    recent_marketing_sends: int = 0


@dataclass(frozen=True, slots=True)
class Send:
    address: str
    """Normalised (E.164 phone, lower-case email): what the adapter sends to."""


@dataclass(frozen=True, slots=True)
class Skip:
    reason: SkipReason


@dataclass(frozen=True, slots=True)
class Defer:
    until: datetime


Verdict = Send | Skip | Defer


def quiet_rules(settings: ChannelSettings) -> dict[str, QuietWindow | None]:
    return rules_from_settings(settings.quiet_hours_email, settings.quiet_hours_sms, settings.quiet_hours_push)


def frequency_cap(settings: ChannelSettings) -> FrequencyCap:
    return FrequencyCap(limit=settings.frequency_cap, window=timedelta(days=settings.frequency_window_days))


def evaluate(
    session: Session, now: datetime, candidates: Sequence[Candidate], settings: ChannelSettings
) -> list[Verdict]:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    verdicts: list[Verdict | None] = [None] * len(candidates)
    addresses: list[str | None] = [None] * len(candidates)

    # 1. contact and time zone, per candidate (no I/O)
    for i, c in enumerate(candidates):
        if c.channel not in CHANNELS:
            verdicts[i] = Skip(SkipReason.unknown_channel)
            continue
        check = check_contact(c.channel, c.address, c.country)
        if check is None:
            verdicts[i] = Skip(SkipReason.no_contact)
        elif not check.ok:
            verdicts[i] = Skip(SkipReason.invalid_contact)
        else:
            try:
                zone(c.time_zone)
            except UnknownTimeZone:
                verdicts[i] = Skip(SkipReason.invalid_time_zone)
                continue
            addresses[i] = check.address

    # 2. consent and suppression, set-based per (kind, channel, purpose) and per channel
    groups: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    by_channel: dict[str, set[str]] = defaultdict(set)
    for i, c in enumerate(candidates):
        if verdicts[i] is None:
            groups[(c.recipient_kind, c.channel, c.purpose)].append(c.recipient_id)
            by_channel[c.channel].add(addresses[i])  # type: ignore[arg-type]
    states: dict[tuple[str, str, str], dict[int, ConsentState]] = {}
    for (kind, channel, purpose), ids in groups.items():
        if kind in ("member", "staff") and purpose in ("marketing", "transactional", "staff"):
            states[(kind, channel, purpose)] = current_consent(session, kind, ids, channel, purpose)
    suppressed = {ch: suppressed_addresses(session, ch, addrs, normalised=True) for ch, addrs in by_channel.items()}

    # 3. policy
    capped: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)
    for i, c in enumerate(candidates):
        if verdicts[i] is not None:
            continue
        key = (c.recipient_kind, c.channel, c.purpose)
        state = states.get(key, {}).get(c.recipient_id, ConsentState.unknown)
        decision = consent_decision(c.purpose, c.channel, c.recipient_kind, state, addresses[i] in suppressed[c.channel])
        if isinstance(decision, Deny):
            verdicts[i] = Skip(decision.reason)
        elif c.purpose == "marketing":
            capped[(c.recipient_kind, c.recipient_id)].append((i, c.priority))

    # 4. frequency cap across journeys: highest priority first within the chunk
    cap = frequency_cap(settings)
    for requests in capped.values():
        recent = candidates[requests[0][0]].recent_marketing_sends
        granted = allot(requests, recent, cap)
        for i, _ in requests:
            if i not in granted:
                verdicts[i] = Skip(SkipReason.frequency_cap)

    # 5. quiet hours in the recipient's zone: defer, never drop
    rules = quiet_rules(settings)
    result: list[Verdict] = []
    for i, c in enumerate(candidates):
        verdict = verdicts[i]
        if verdict is None:
            until = next_allowed(now, c.time_zone, c.channel, rules)
            verdict = Defer(until) if until > now else Send(addresses[i])  # type: ignore[arg-type]
        result.append(verdict)
    return result
