"""Settling sends whose outcome is unknown, from evidence, before anything is sent again.

A row is `unknown` when its request went out and no answer came (a read timeout, a connection
lost mid-answer), and `sending` rows found by a later run were left in flight by a crash: either
way the provider may or may not have the message. Such a row is never resent as it is. Each time
its enrollment comes due, `settle_rows` looks for evidence (channels.settlement):

1. a provider event carrying the ledger id (SendGrid Event Webhook, Twilio status callback)
   -> `sent`, with the provider's message id; also on every pass with work for the journey, for rows still
   waiting and for earlier `failed: outcome_unknown` ones (`upgrade_from_events`);
2. until `SETTLE_HOLD` has passed since the hand-over: nothing more; the row stays `unknown` and
   the enrollment waits for the end of the hold (events normally arrive within seconds);
3. after the hold, the provider's own records where it has a lookup (Twilio's Messages list):
   found -> `sent`; searched and absent -> back to `reserved`, sent again on this pass;
4. no lookup (SendGrid, FCM), or the lookup failed -> `failed` with reason `outcome_unknown`.

Worst cases, stated plainly: with SendGrid, a message SendGrid did not take (its answer lost) or
took without any event reaching us within the hold is reported failed `outcome_unknown` and never
sent: a visible gap, never a duplicate; a late event turns it into `sent`. With Twilio, a
duplicate is possible only if Twilio had the message but its Messages list did not show it after
the hold (a message still queued at Twilio has no DateSent yet) and no status callback came.

The fingerprint a lookup matches on is written to the row's `reason` (`fp:<hex>`) while it is in
flight; an `unknown` row's reason is `<code>:fp:<hex>`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, case, func, or_, select, update
from sqlalchemy.orm import Session

from audiences.models import Member, Staff
from channels.adapters.base import Evidence
from channels.models import DeliveryEvent
from channels.settlement import event_evidence, provider_evidence
from journeys.models import SendStatus, Send as LedgerRow
from journeys.services import Services
from journeys.state import Advance, Outcome, Park
from journeys.stats import TickStats

log = logging.getLogger("loyalflow.settle")

SETTLE_HOLD = timedelta(minutes=10)
"""How long after the hand-over an unknown outcome waits for events before a lookup or a verdict."""
UNSETTLED = (SendStatus.sending, SendStatus.unknown)
LATE_EVENTS = timedelta(days=3)
"""How long a provider event may still turn an unknown outcome into `sent` (SendGrid retries its
Event Webhook for up to 72 hours)."""
OUTCOME_UNKNOWN = "outcome_unknown"
_FP = re.compile(r"fp:([0-9a-f]{16})")
_ADDRESS_COLUMN = {"email": "email", "sms": "phone"}


def note_fingerprints(session: Session, fingerprints: Mapping[int, str]) -> None:
    """Write each in-flight row's fingerprint (before the request goes, so a crash keeps it too)."""
    if fingerprints:
        table = LedgerRow.__table__
        session.execute(update(table).where(and_(table.c.id == bindparam("b_id"),
                                                 table.c.status == SendStatus.sending.value))
                        .values(reason=bindparam("b_reason")),
                        [{"b_id": i, "b_reason": f"fp:{fp}"} for i, fp in fingerprints.items()])


def mark_unknown(session: Session, ledger_id: int, code: str, now: datetime) -> None:
    """`sending` -> `unknown`, keeping the fingerprint and the hand-over instant (updated_at)."""
    row_reason = session.scalar(select(LedgerRow.reason).where(LedgerRow.id == ledger_id)) or ""
    found = _FP.search(row_reason)
    reason = f"{code[:24]}:fp:{found.group(1)}" if found else code[:64]
    session.execute(update(LedgerRow).where(LedgerRow.id == ledger_id, LedgerRow.status == SendStatus.sending)
                    .values(status=SendStatus.unknown, reason=reason),
                    execution_options={"synchronize_session": False})


def _addresses(session: Session, rows: Sequence[LedgerRow]) -> dict[int, str | None]:
    """The address each row went to, for the provider lookup (email or phone; push has no lookup)."""
    out: dict[int, str | None] = {}
    for kind, model in (("member", Member), ("staff", Staff)):
        wanted = [r for r in rows if r.recipient_kind == kind and r.channel in _ADDRESS_COLUMN]
        if not wanted:
            continue
        found = {i: (e, p) for i, e, p in session.execute(
            select(model.id, model.email, model.phone).where(model.id.in_({r.recipient_id for r in wanted})))}
        for r in wanted:
            email, phone = found.get(r.recipient_id, (None, None))
            out[r.id] = email if r.channel == "email" else phone
    return out


def settle_rows(session: Session, rows: Sequence[LedgerRow], now: datetime, services: Services, stats: TickStats,
                hold: timedelta = SETTLE_HOLD) -> dict[int, Outcome | None]:
    """Per ledger id: Advance (settled: sent or failed), Park (still unknown, waiting for the hold to
    end), or None (proven absent at the provider: the row is `reserved` again and may be sent now)."""
    if not rows:
        return {}
    events = event_evidence(session, [r.id for r in rows])
    waiting = [r for r in rows if r.id not in events and now < r.updated_at + hold]
    due = [r for r in rows if r.id not in events and now >= r.updated_at + hold]
    addresses = _addresses(session, [r for r in due if _has_lookup(services, r.channel)])
    out: dict[int, Outcome | None] = {}
    for row in rows:
        if row.id in events:
            _sent(session, row, events[row.id], "event")
            stats.sent[row.channel or "unknown"] += 1
            out[row.id] = Advance()
    for row in waiting:
        if row.status == SendStatus.sending:  # left in flight by a crash: unknown from now on
            session.execute(update(LedgerRow).where(LedgerRow.id == row.id, LedgerRow.status == SendStatus.sending)
                            .values(status=SendStatus.unknown, reason=_crash_reason(row.reason)),
                            execution_options={"synchronize_session": False})
        out[row.id] = Park(row.updated_at + hold)
    for row in due:
        found = _FP.search(row.reason or "")
        adapter = services.adapters.get(row.channel or "")
        evidence = provider_evidence(adapter, addresses.get(row.id), found.group(1) if found else None,
                                     row.reserved_at)
        if evidence.evidence is Evidence.accepted:
            _sent(session, row, evidence.provider_message_id, evidence.source)
            stats.sent[row.channel or "unknown"] += 1
            out[row.id] = Advance()
        elif evidence.evidence is Evidence.absent:
            log.info("ledger row %s: not at the provider (%s): sent again", row.id, evidence.source)
            session.execute(update(LedgerRow).where(LedgerRow.id == row.id, LedgerRow.status.in_(UNSETTLED))
                            .values(status=SendStatus.reserved, reason="resend:absent", updated_at=now),
                            execution_options={"synchronize_session": False})
            out[row.id] = None
        else:
            log.warning("ledger row %s: outcome unknown and no evidence after the hold: failed %s, not resent",
                        row.id, OUTCOME_UNKNOWN)
            session.execute(update(LedgerRow).where(LedgerRow.id == row.id, LedgerRow.status.in_(UNSETTLED))
                            .values(status=SendStatus.failed, reason=OUTCOME_UNKNOWN, updated_at=now),
                            execution_options={"synchronize_session": False})
            stats.failed[OUTCOME_UNKNOWN] += 1
            out[row.id] = Advance()
    return out


def _crash_reason(reason: str | None) -> str:
    found = _FP.search(reason or "")
    return f"crash:fp:{found.group(1)}" if found else "crash"


def _has_lookup(services: Services, channel: str | None) -> bool:
    return hasattr(services.adapters.get(channel or ""), "lookup")


def _sent(session: Session, row: LedgerRow, provider_message_id: str | None, source: str) -> None:
    """Settled as sent: at the hand-over instant, so frequency caps count it where it happened."""
    log.info("ledger row %s: outcome settled as sent from %s", row.id, source)
    session.execute(update(LedgerRow).where(LedgerRow.id == row.id, LedgerRow.status.in_(UNSETTLED))
                    .values(status=SendStatus.sent, reason=None, provider_message_id=provider_message_id,
                            sent_at=row.updated_at),
                    execution_options={"synchronize_session": False})


def upgrade_from_events(session: Session, journey: str, now: datetime) -> int:
    """Rows of `journey` still `unknown`, or failed `outcome_unknown`, for which a provider event has
    arrived within `LATE_EVENTS`: `sent` after all (at the hand-over instant). One indexed query per
    pass when nothing waits; returns how many."""
    unsettled = or_(LedgerRow.status == SendStatus.unknown,
                    and_(LedgerRow.status == SendStatus.failed, LedgerRow.reason == OUTCOME_UNKNOWN))
    # the rows waiting for evidence first (the (journey, status) index; usually none), then only their
    # events (the ledger-id index): never a pass over every delivery event a program ever received
    waiting = session.scalars(select(LedgerRow.id).where(LedgerRow.journey == journey, unsettled,
                                                         LedgerRow.updated_at >= now - LATE_EVENTS)).all()
    if not waiting:
        return 0
    evidenced = [i for part in _parts(list(waiting), 5_000) for i in session.scalars(
        select(DeliveryEvent.ledger_id).where(DeliveryEvent.ledger_id.in_(part)).distinct())]
    if not evidenced:
        return 0
    result = session.execute(
        update(LedgerRow).where(LedgerRow.journey == journey, unsettled, LedgerRow.id.in_(evidenced))
        .values(status=SendStatus.sent, reason=None,
                provider_message_id=select(func.max(DeliveryEvent.provider_message_id))
                .where(DeliveryEvent.ledger_id == LedgerRow.id).scalar_subquery(),
                sent_at=case((LedgerRow.status == SendStatus.unknown, LedgerRow.updated_at), else_=LedgerRow.sent_at),
                updated_at=now),
        execution_options={"synchronize_session": False})
    return int(result.rowcount or 0)


def _parts(ids: list[int], size: int) -> list[list[int]]:
    return [ids[i:i + size] for i in range(0, len(ids), size)]
