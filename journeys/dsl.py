"""The journey DSL: a journey is data, built from a few small step constructors.

    JOURNEY = Journey(
        name="points_expiring", audience="points_expiring", occurrence_key="batch_id", ...,
        steps=[
            wait_until(before("expires_at", days=30), at="10:00"),
            send(email("points_expiring/email_30d")),
            exit_when(batch_spent),
            ...
        ],
    )

Every constructor remembers the file and line it was called from, so `loyalflow check` can point
at the step a problem is in.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from datetime import time, timedelta
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from journeys.conditions import Condition

Purpose = str
"""One of templates.vocabulary.PURPOSES ("marketing", "transactional", "staff"); `loyalflow check` says which."""


@dataclass(frozen=True)
class Where:
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


def _caller(depth: int = 2) -> Where:
    frame = sys._getframe(depth)
    return Where(frame.f_code.co_filename, frame.f_lineno)


@dataclass(frozen=True)
class Message:
    channel: str
    template: str
    """`journey/step` of a template in templates/."""


def email(template: str) -> Message:
    return Message("email", template)


def sms(template: str) -> Message:
    return Message("sms", template)


def push(template: str) -> Message:
    return Message("push", template)


@dataclass(frozen=True)
class FieldTime:
    """An instant relative to a datetime field of the enrollment (e.g. 7 days before expires_at)."""

    field: str
    offset: timedelta

    def describe(self) -> str:
        days = self.offset / timedelta(days=1)
        if days == 0:
            return f"at {self.field}"
        return f"{abs(days):g} days {'before' if days < 0 else 'after'} {self.field}"


def before(field_name: str, *, days: float = 0, hours: float = 0) -> FieldTime:
    return FieldTime(field_name, -timedelta(days=days, hours=hours))


def after(field_name: str, *, days: float = 0, hours: float = 0) -> FieldTime:
    return FieldTime(field_name, timedelta(days=days, hours=hours))


Deadline = FieldTime | timedelta
"""A send is stale after a field-relative instant, or a duration after enrollment."""


METRICS = ("conversion", "click", "redemption")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True)
class Variant:
    """One arm of an A/B test: its share of enrollments, and what differs.

    `template` replaces the step's template (`journey/step`, or {channel: template} for a fallback
    chain); None keeps the step's own. Every variant's name reaches the enricher and the templates
    as `variant`, so an offer can differ without a template of its own."""

    name: str
    template: str | dict[str, str] | None = None
    weight: float = 50


@dataclass(frozen=True)
class WinnerRule:
    """Promote the best variant for new enrollments once it beats every other one on `metric`
    within `within` of the send (two-proportion z-test at `alpha`, each variant with `min_sample` sends)."""

    metric: str = "conversion"
    within: timedelta = timedelta(days=14)
    min_sample: int = 1_000
    alpha: float = 0.05


@dataclass(frozen=True)
class Send:
    messages: tuple[Message, ...]
    """One channel, or an ordered fallback: the first one the recipient can receive is used."""
    key: str
    purpose: str | None
    stale: Deadline | None
    where: Where
    variants: tuple[Variant, ...] = ()
    """An A/B test (journeys/variants.py): each enrollment is in one variant, by a hash like the holdout's."""
    winner: WinnerRule | None = None


@dataclass(frozen=True)
class Wait:
    duration: timedelta | None
    until: FieldTime | None
    at: time | None
    """Local wall-clock time in the recipient's zone at which the wait ends (with `best`: the fallback)."""
    where: Where
    best: bool = False
    """at="best": the member's own most likely hour (journeys/send_time.py) when known, else `at`."""
    best_holdout: float = 10.0
    """at="best": percent of members with a known hour who get `at` anyway, to measure the lift."""


@dataclass(frozen=True)
class Branch:
    condition: Condition
    then: tuple[Step, ...]
    otherwise: tuple[Step, ...]
    where: Where


@dataclass(frozen=True)
class ExitWhen:
    condition: Condition
    where: Where


@dataclass(frozen=True)
class End:
    where: Where


Step = Send | Wait | Branch | ExitWhen | End


def _default_key(messages: tuple[Message, ...]) -> str:
    return messages[0].template.rsplit("/", 1)[-1]


def send(*messages: Message, key: str | None = None, purpose: Purpose | None = None,
         stale: Deadline | None = None, variants: dict[str, float] | list[Variant] | None = None,
         winner: WinnerRule | None = None) -> Send:
    """Send one message; several are a fallback chain (push, then SMS, then email).

    `variants={"a": 50, "b": 50}` (the same templates, `variant` in the context) or
    `variants=[Variant("control", weight=50), Variant("short", template="win_back/email_offer_short", weight=50)]`
    splits enrollments; `winner=WinnerRule(...)` promotes the best one for new enrollments."""
    where = _caller()
    arms = _variants(variants, where)
    channels = {m.channel for m in messages}
    for arm in arms:
        if isinstance(arm.template, str) and len(messages) != 1:
            raise ValueError(f"{where}: variant {arm.name!r} of a fallback chain needs template={{channel: template}}")
        if isinstance(arm.template, dict) and not set(arm.template) <= channels:
            raise ValueError(f"{where}: variant {arm.name!r} names channels {sorted(set(arm.template) - channels)} "
                             "that this send does not use")
    if winner is not None:
        if len(arms) < 2:
            raise ValueError(f"{where}: winner=... needs at least two variants")
        if winner.metric not in METRICS:
            raise ValueError(f"{where}: winner metric {winner.metric!r} is not one of {', '.join(METRICS)}")
        if not 0 < winner.alpha < 1 or winner.min_sample < 1 or winner.within <= timedelta(0):
            raise ValueError(f"{where}: winner rule needs 0 < alpha < 1, min_sample >= 1 and a positive `within`")
    return Send(tuple(messages), key or (_default_key(tuple(messages)) if messages else ""), purpose, stale, where,
                arms, winner)


def _variants(given: dict[str, float] | list[Variant] | None, where: Where) -> tuple[Variant, ...]:
    if not given:
        return ()
    arms = [Variant(name, None, weight) for name, weight in given.items()] if isinstance(given, dict) else list(given)
    names = [a.name for a in arms]
    for arm in arms:
        if not isinstance(arm, Variant) or not _NAME.fullmatch(str(arm.name)):
            raise ValueError(f"{where}: variant {getattr(arm, 'name', arm)!r} needs a name of lower-case letters, "
                             "digits and _ (at most 32)")
        if not arm.weight > 0:
            raise ValueError(f"{where}: variant {arm.name!r} needs a positive weight, not {arm.weight!r}")
    if len(set(names)) != len(names) or len(arms) < 2:
        raise ValueError(f"{where}: variants need at least two distinct names, got {names}")
    return tuple(arms)


def _parse_at(at: str | time | None) -> time | None:
    if at is None or isinstance(at, time):
        return at
    try:
        return time.fromisoformat(at)
    except ValueError:
        raise ValueError(f"at={at!r} is not a time of day like '10:00'") from None


BEST = "best"
DEFAULT_BEST_FALLBACK = time(10, 0)


def _at_and_best(at: str | time | None, fallback: str | time | None, where: Where) -> tuple[time | None, bool]:
    try:
        if at == BEST:
            return _parse_at(fallback) or DEFAULT_BEST_FALLBACK, True
        if fallback is not None:
            raise ValueError(f"fallback={fallback!r} only goes with at='best'")
        return _parse_at(at), False
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def wait(*, days: float = 0, hours: float = 0, minutes: float = 0, at: str | time | None = None,
         fallback: str | time | None = None, best_holdout: float = 10) -> Wait:
    """Wait a duration; with `at`, until that local time on the day the duration lands on.
    at="best": the member's most likely engagement hour, else `fallback` (default 10:00); a
    `best_holdout` percent of members with a known hour get the fallback, as the report's control."""
    where = _caller()
    wall, best = _at_and_best(at, fallback, where)
    return Wait(timedelta(days=days, hours=hours, minutes=minutes), None, wall, where, best,
                _holdout_percent(best_holdout, where))


def wait_until(instant: FieldTime, *, at: str | time | None = None, fallback: str | time | None = None,
               best_holdout: float = 10) -> Wait:
    """Wait until an instant relative to the member's data; no wait if it has passed."""
    where = _caller()
    wall, best = _at_and_best(at, fallback, where)
    return Wait(None, instant, wall, where, best, _holdout_percent(best_holdout, where))


def _holdout_percent(percent: float, where: Where) -> float:
    if not 0 <= percent <= 50:
        raise ValueError(f"{where}: best_holdout must be a percent between 0 and 50, got {percent}")
    return float(percent)


def branch(condition: Condition, then: list[Step], otherwise: list[Step] | None = None) -> Branch:
    return Branch(condition, tuple(then), tuple(otherwise or ()), _caller())


def exit_when(condition: Condition) -> ExitWhen:
    return ExitWhen(condition, _caller())


def end() -> End:
    return End(_caller())


@dataclass(frozen=True)
class EventTrigger:
    """Members enter when an event of `type` arrives (POST /v1/events, `loyalflow events import`).

    `match` keeps only events whose properties equal the given values (compiled to SQL);
    `properties` declares the properties templates may use, with their Python types, so
    `loyalflow check` can verify templates; `max_age` ignores events that happened longer ago
    than that when they reach a pass (a backfilled file never thanks last year's buyers).
    """

    type: str
    match: dict[str, Any]
    properties: dict[str, type]
    max_age: timedelta | None
    where: Where


def event(type: str, *, where: dict[str, Any] | None = None, properties: dict[str, type] | None = None,
          max_age: timedelta | None = timedelta(days=1)) -> EventTrigger:
    """trigger=event("purchase", where={"first_purchase": True}, properties={"amount": float})"""
    return EventTrigger(type, dict(where or {}), dict(properties or {}), max_age, _caller())


def walk(steps: tuple[Step, ...]) -> list[Step]:
    """Every step, branches included, in order."""
    out: list[Step] = []
    for s in steps:
        out.append(s)
        if isinstance(s, Branch):
            out += walk(s.then) + walk(s.otherwise)
    return out


ONCE = "once"
"""occurrence_key: one enrollment per recipient, ever."""
WEEKLY = "week"
"""occurrence_key: one enrollment per recipient per ISO week of the tick."""

Enricher = Callable[[Any, Any, list[dict[str, Any]]], list[dict[str, Any]]]


@dataclass(frozen=True)
class Journey:
    name: str
    description: str
    version: int
    purpose: str
    audience: str | None = None
    """Whose audience diff enrolls members on `schedule`; None for a journey entered only by events."""
    steps: tuple[Step, ...] = ()
    occurrence_key: str = ONCE
    """An audience field (a new value is a new occurrence), ONCE or WEEKLY."""
    audience_params: dict[str, Any] = field(default_factory=dict)
    schedule: str | None = "0 9 * * *"
    """Cron, in UTC: when the journey ticks (None, and ignored, without an audience)."""
    trigger: EventTrigger | None = None
    """Members also (or only) enter on an event: trigger=event("purchase", ...)."""
    priority: int = 50
    """Higher wins under the cross-journey frequency cap."""
    holdout_percent: float = 0.0
    rollout_percent: float = 100.0
    stale: Deadline | None = None
    """Default deadline for every send of the journey."""
    earlier_versions: dict[int, tuple[Step, ...]] = field(default_factory=dict)
    """Steps of versions still running for enrollments that started on them."""
    enrich: Enricher | None = None
    """Adds journey-specific template variables for a chunk: (session, now, contexts) -> contexts."""
    where: Where = field(default_factory=lambda: _caller(3))

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        object.__setattr__(self, "earlier_versions", {k: tuple(v) for k, v in self.earlier_versions.items()})
        if self.audience is None:
            if self.trigger is None:
                raise ValueError(f"journey {self.name!r} has neither an audience nor a trigger: give "
                                 "audience=... (entered on its schedule) or trigger=event(...)")
            object.__setattr__(self, "schedule", None)  # no audience: nothing to diff on a cron
        tests = [s for s in walk(self.steps) if isinstance(s, Send) and s.variants]
        splits = {tuple((v.name, v.weight) for v in s.variants) for s in tests}
        if len(splits) > 1 or sum(s.winner is not None for s in tests) > 1:
            raise ValueError(f"journey {self.name!r} ({tests[-1].where}): an enrollment is in one variant for the "
                             "whole journey, so every send with variants needs the same names and weights, "
                             "and at most one of them a winner rule")

    def steps_for(self, version: int) -> tuple[Step, ...] | None:
        return self.steps if version == self.version else self.earlier_versions.get(version)
