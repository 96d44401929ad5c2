"""A/B variants: which variant an enrollment is in, what it is sent, and when a winner is promoted.

Assignment is a deterministic hash of (recipient, journey) like the holdout's (journeys/holdout.py),
computed in SQL when members enroll and kept on the enrollment (`enrollments.variant`), so a
member's variant never depends on the run, the database or the order of rows. An enrollment is in
one variant for the whole journey; each send step with variants sends that variant's version.

A winner rule is evaluated when the journey enrolls (before anyone new enters): once the best
variant beats every other one on its metric (two-proportion z-test, Bonferroni-corrected, every
variant with at least `min_sample` matured sends), the decision is written to `ab_decisions` with
the rates and p-value, and every enrollment made from then on gets the winner. Enrollments already
running keep their variant, so the measured groups stay what they were.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    case,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from audiences.models import Purchase
from audiences.models.points import PointsEntry, PointsKind
from channels.models import DeliveryEvent, DeliveryEventKind
from journeys.dsl import Journey, Message, Send, Variant, WinnerRule, walk
from journeys.holdout import BUCKETS, bucket, bucket_sql
from journeys.models import AbDecision, Enrollment, SendStatus
from journeys.models import Send as LedgerRow

log = logging.getLogger("loyalflow.variants")

SALT = "variant"


def tested_steps(journey: Journey) -> list[Send]:
    """The journey's send steps that carry variants (all with the same split; dsl checks it)."""
    return [s for s in walk(journey.steps) if isinstance(s, Send) and s.variants]


def arms_of(journey: Journey) -> tuple[Variant, ...]:
    tested = tested_steps(journey)
    return tested[0].variants if tested else ()


def _cuts(arms: Sequence[Variant]) -> list[tuple[str, int]]:
    """(name, exclusive upper bucket) per variant: weights become shares of the 10,000 buckets."""
    total = sum(a.weight for a in arms)
    out, running = [], 0.0
    for a in arms:
        running += a.weight
        out.append((a.name, round(running * BUCKETS / total)))
    out[-1] = (out[-1][0], BUCKETS)
    return out


def assign(recipient_id: int, journey: str, arms: Sequence[Variant]) -> str:
    """The variant a recipient is in, by hash (the Python twin of `assign_sql`)."""
    b = bucket(recipient_id, journey, SALT)
    for name, upper in _cuts(arms):
        if b < upper:
            return name
    raise AssertionError("unreachable: the last cut is BUCKETS")


def assign_sql(recipient_id: ColumnElement[int], journey: str, arms: Sequence[Variant]) -> ColumnElement[str]:
    b = bucket_sql(recipient_id, journey, SALT)
    cuts = _cuts(arms)
    return case(*((b < upper, literal(name)) for name, upper in cuts[:-1]), else_=literal(cuts[-1][0]))


def decision(session: Session, journey: Journey) -> AbDecision | None:
    """The promoted winner of the journey's test, if one is promoted and still one of its variants."""
    names = {a.name for a in arms_of(journey)}
    if not names:
        return None
    found = session.scalars(select(AbDecision).where(AbDecision.journey == journey.name)
                            .order_by(AbDecision.decided_at.desc(), AbDecision.id.desc())).first()
    return found if found is not None and found.winner in names else None


def variant_sql(session: Session, journey: Journey, recipient_id: ColumnElement[int]) -> ColumnElement[str] | None:
    """What `enroll` stores as each new enrollment's variant: the winner once promoted, else the hash."""
    arms = arms_of(journey)
    if not arms:
        return None
    promoted = decision(session, journey)
    return literal(promoted.winner) if promoted is not None else assign_sql(recipient_id, journey.name, arms)


def message_for(variant: Variant, message: Message) -> Message:
    if variant.template is None:
        return message
    if isinstance(variant.template, str):
        return Message(message.channel, variant.template)
    return Message(message.channel, variant.template.get(message.channel, message.template))


def variant_messages(step: Send) -> list[Message]:
    """Every message a step may send, its variants' included (what `loyalflow check` must verify)."""
    out = list(step.messages)
    for v in step.variants:
        out += [m for m in (message_for(v, msg) for msg in step.messages) if m not in out]
    return out


def apply(session: Session, journey: Journey, step: Send,
          chosen: list[tuple[Any, Message, str]]) -> list[tuple[Any, Message, str]]:
    """Each chosen (enrollment, message, address) with its variant's message, and `variant` in the
    enrollment's context for this send (enrichers and templates read it). Enrollments that entered
    without one (e.g. by an event) get it here and kept (one UPDATE): the winner if they entered
    after its promotion, else the hash."""
    if not step.variants or not chosen:
        return chosen
    by_name = {v.name: v for v in step.variants}
    missing = [r for r, _, _ in chosen if r.variant not in by_name]
    if missing:
        promoted = decision(session, journey)
        for r in missing:
            entered_after = promoted is not None and r.enrolled_at is not None and r.enrolled_at >= promoted.decided_at
            r.variant = promoted.winner if entered_after else assign(r.recipient_id, journey.name, step.variants)
        table = Enrollment.__table__
        session.execute(update(table).where(table.c.id == bindparam("b_id")).values(variant=bindparam("b_variant")),
                        [{"b_id": r.id, "b_variant": r.variant} for r in missing])
    out = []
    for r, message, address in chosen:
        r.context = {**(r.context or {}), "variant": r.variant}  # in memory: the variant column is the record
        out.append((r, message_for(by_name[r.variant], message), address))
    return out


# --- the winner rule -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Arm:
    name: str
    sends: int
    successes: int

    @property
    def rate(self) -> float:
        return self.successes / self.sends if self.sends else 0.0


@dataclass(frozen=True)
class Verdict:
    arms: dict[str, Arm]
    winner: str | None
    """Set only when the rule is met: enough sends everywhere and significant against every other variant."""
    p_value: float | None
    """The largest p-value of the best variant against the others (None: not computed)."""
    reason: str


def normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def two_proportion_p(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test (1.0 when it cannot tell)."""
    if not n1 or not n2:
        return 1.0
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (x1 / n1 - x2 / n2) / se
    return 2.0 * (1.0 - normal_cdf(abs(z)))


def judge(counts: dict[str, tuple[int, int]], rule: WinnerRule) -> Verdict:
    """The rule on {variant: (sends, successes)}: a winner only past the significance threshold."""
    arms = {name: Arm(name, n, x) for name, (n, x) in counts.items()}
    if len(arms) < 2:
        return Verdict(arms, None, None, "fewer than two variants with sends")
    small = sorted(a.name for a in arms.values() if a.sends < rule.min_sample)
    if small:
        return Verdict(arms, None, None, f"under min_sample={rule.min_sample}: {', '.join(small)}")
    ranked = sorted(arms.values(), key=lambda a: a.rate, reverse=True)
    best, others = ranked[0], ranked[1:]
    if best.rate == others[0].rate:
        return Verdict(arms, None, 1.0, "tie for best rate")
    p = max(two_proportion_p(best.successes, best.sends, o.successes, o.sends) for o in others)
    threshold = rule.alpha / len(others)  # Bonferroni: the best must beat each of the others
    if p >= threshold:
        return Verdict(arms, None, p, f"p={p:.4g} not below {threshold:.4g}")
    return Verdict(arms, best.name, p, f"{best.name} {best.rate:.2%} beats every other variant, p={p:.4g}")


def outcomes(session: Session, journey: Journey, step: Send, rule: WinnerRule, now: datetime) -> dict[str, tuple[int, int]]:
    """{variant: (matured sends, successes)}: sends of `step` at least `rule.within` ago, a success being
    the metric's first outcome within `rule.within` after the send."""
    e, s = Enrollment, LedgerRow
    if rule.metric == "conversion":
        at = Purchase.purchased_at
        outcome = (Purchase, and_(Purchase.member_id == s.recipient_id, s.recipient_kind == "member",
                                  at > s.sent_at, at <= now))
    elif rule.metric == "redemption":
        at = PointsEntry.occurred_at
        outcome = (PointsEntry, and_(PointsEntry.member_id == s.recipient_id, s.recipient_kind == "member",
                                     PointsEntry.kind == PointsKind.redeem, at > s.sent_at, at <= now))
    else:
        at = DeliveryEvent.occurred_at
        outcome = (DeliveryEvent, and_(DeliveryEvent.ledger_id == s.id, DeliveryEvent.event == DeliveryEventKind.click,
                                       at <= now))
    rows = session.execute(
        select(s.id, e.variant, s.sent_at, func.min(at)).select_from(s).join(e, e.id == s.enrollment_id)
        .outerjoin(*outcome)
        .where(s.journey == journey.name, s.step_key == step.key, s.status == SendStatus.sent,
               s.sent_at <= now - rule.within, e.variant.is_not(None))
        .group_by(s.id, e.variant, s.sent_at))
    counts: dict[str, list[int]] = {v.name: [0, 0] for v in step.variants}
    for _, variant, sent_at, first in rows:
        tally = counts.setdefault(variant, [0, 0])
        tally[0] += 1
        if first is not None and _aware(first) <= _aware(sent_at) + rule.within:
            tally[1] += 1
    return {name: (n, x) for name, (n, x) in counts.items()}


def _aware(value: Any) -> datetime:
    """min() over a UTC column comes back as text or naive on some drivers: the database holds UTC."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def evaluate(session: Session, journey: Journey, now: datetime) -> tuple[Send, Verdict] | None:
    """The journey's winner rule on the outcomes known at `now` (None: no rule)."""
    for step in tested_steps(journey):
        if step.winner is not None:
            return step, judge(outcomes(session, journey, step, step.winner, now), step.winner)
    return None


def promote(session: Session, journey: Journey, now: datetime) -> AbDecision | None:
    """Record the winner once the rule is met (once per journey and step, whoever runs it); the decision."""
    if not any(s.winner is not None for s in tested_steps(journey)):
        return None
    if (existing := decision(session, journey)) is not None:
        return existing
    found = evaluate(session, journey, now)
    if found is None or found[1].winner is None:
        return None
    step, verdict = found
    rule = step.winner
    assert rule is not None and verdict.p_value is not None
    values = {
        "journey": journey.name, "step_key": step.key, "winner": verdict.winner, "metric": rule.metric,
        "within_days": rule.within.total_seconds() / 86_400, "alpha": rule.alpha, "p_value": verdict.p_value,
        "rates": {a.name: {"sends": a.sends, "successes": a.successes, "rate": a.rate} for a in verdict.arms.values()},
        "decided_at": now,
    }
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(AbDecision)
    session.execute(insert.values(**values).on_conflict_do_nothing(index_elements=["journey", "step_key"]))
    log.info("A/B winner for %s/%s: %s (%s)", journey.name, step.key, verdict.winner, verdict.reason)
    return decision(session, journey)
