"""The send ledger's operations: reserve, hand over, finish, and what a provider's answer does to a row.

The rules that make a send exactly-once live here (see journeys/delivery.py for the whole story):
a row per (enrollment, step) is reserved first (unique key); only the UPDATE that moves a row from
reserved/deferred to `sending` lets it leave, and it is committed before any adapter is called.
`transition_for` is the one place a DeliveryResult becomes a ledger status.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from channels.adapters.base import DeliveryResult, DeliveryStatus
from journeys.bulk import id_in, instant_writer, on_postgresql, placeholder, update_by_id
from journeys.dsl import Journey, Send
from journeys.models import Send as LedgerRow
from journeys.models import SendStatus
from journeys.settle import SETTLE_HOLD, mark_unknown
from journeys.state import EnrollmentRow

FINAL = (SendStatus.sent, SendStatus.skipped, SendStatus.failed)
RESERVE_BATCH = 500
"""Rows per INSERT: 9 parameters each, within SQLite's 32,766 and PostgreSQL's 65,535."""
OPEN = (SendStatus.reserved, SendStatus.deferred)


@dataclass(frozen=True, slots=True)
class Reserved:
    """A ledger row this call inserted: it is `reserved`, nothing else has happened to it."""

    id: int
    status: SendStatus = SendStatus.reserved


def reserve(session: Session, journey: Journey, step: Send, rows: Sequence[EnrollmentRow],
            now: datetime) -> dict[int, Reserved | LedgerRow]:
    """A ledger row per enrollment for this step (existing rows are kept as they are), committed.

    One INSERT .. ON CONFLICT DO NOTHING .. RETURNING per 500 rows on SQLite, per chunk on PostgreSQL
    (arrays through unnest), straight to the driver (no per-row parameter processing): the rows it inserted come back as `Reserved`; only rows that already
    existed (a resumed or shared step: rare) are read back whole."""
    purpose = step.purpose or journey.purpose
    template = step.messages[0].template
    at = instant_writer(session)(now)
    p = placeholder(session)
    row_sql = f"({p}, {p}, {p}, {p}, {p}, {p}, NULL, {p}, 'reserved', NULL, 0, {p}, {p})"
    found: dict[int, Reserved | LedgerRow] = {}
    if on_postgresql(session):  # the chunk as arrays: one INSERT .. SELECT FROM unnest(..) .. RETURNING
        inserted = session.connection().exec_driver_sql(
            "INSERT INTO sends (enrollment_id, step_key, journey, recipient_kind, recipient_id, purpose, channel, "
            "template, status, reason, attempts, reserved_at, updated_at) "
            "SELECT v.enrollment_id, %s, %s, v.kind, v.recipient_id, %s, NULL, %s, 'reserved', NULL, 0, %s, %s "
            "FROM unnest(%s::integer[], %s::varchar[], %s::integer[]) AS v(enrollment_id, kind, recipient_id) "
            "ON CONFLICT (enrollment_id, step_key) DO NOTHING RETURNING id, enrollment_id",
            (step.key, journey.name, purpose, template, at, at,
             [r.id for r in rows], [r.recipient_kind for r in rows], [r.recipient_id for r in rows]))
        found.update({enrollment_id: Reserved(ledger_id) for ledger_id, enrollment_id in inserted})
        rows_left: Sequence[EnrollmentRow] = ()
    else:
        rows_left = rows
    for lo in range(0, len(rows_left), RESERVE_BATCH):  # SQLite: one multi-row INSERT .. RETURNING per batch
        batch = rows_left[lo:lo + RESERVE_BATCH]
        params: list[Any] = []
        for r in batch:
            params += (r.id, step.key, journey.name, r.recipient_kind, r.recipient_id, purpose, template, at, at)
        inserted = session.connection().exec_driver_sql(
            "INSERT INTO sends (enrollment_id, step_key, journey, recipient_kind, recipient_id, purpose, channel, "
            "template, status, reason, attempts, reserved_at, updated_at) VALUES "
            + ", ".join([row_sql] * len(batch))
            + " ON CONFLICT (enrollment_id, step_key) DO NOTHING RETURNING id, enrollment_id", tuple(params))
        found.update({enrollment_id: Reserved(ledger_id) for ledger_id, enrollment_id in inserted})
    session.commit()
    existing = [r.id for r in rows if r.id not in found]
    if existing:
        found.update({r.enrollment_id: r for r in session.execute(select(LedgerRow).where(
            id_in(session, LedgerRow.enrollment_id, existing), LedgerRow.step_key == step.key)).scalars()})
    return found


def finish(session: Session, row_ids: Sequence[int], status: SendStatus, reason: str | None, now: datetime,
           only_from: Sequence[SendStatus] = OPEN) -> None:
    """Move rows still in `only_from` to `status` (a row that moved on meanwhile is left alone)."""
    if row_ids:
        session.execute(update(LedgerRow).where(id_in(session, LedgerRow.id, row_ids), LedgerRow.status.in_(only_from))
                        .values(status=status, reason=reason, updated_at=now),
                        execution_options={"synchronize_session": False})


def hand_over(session: Session, chosen: Sequence[tuple[int, str, str]], now: datetime) -> set[int]:
    """The exclusive hand-over of (ledger id, channel, template) rows: returns the ids this call moved
    to `sending`; only those may be given to an adapter. Committed before returning.

    One UPDATE .. RETURNING per (channel, template) (a chunk has one or a few): a row moves only
    from reserved/deferred, so two workers can never both move it."""
    if not chosen:
        return set()
    groups: dict[tuple[str, str], list[int]] = {}
    for i, channel, template in chosen:
        groups.setdefault((channel, template), []).append(i)
    table = LedgerRow.__table__
    mine: set[int] = set()
    for (channel, template), ids in groups.items():
        mine.update(session.execute(
            update(table).where(id_in(session, table.c.id, ids), table.c.status.in_([st.value for st in OPEN]))
            .values(channel=channel, template=template, status=SendStatus.sending.value,
                    attempts=table.c.attempts + 1, updated_at=now)
            .returning(table.c.id)).scalars())
    session.commit()
    return mine


def release_unsent(session: Session, row_ids: Sequence[int], now: datetime) -> None:
    """Rows handed over but never accepted by a provider that refused us (401/403) go back to `reserved`."""
    if row_ids:
        session.execute(update(LedgerRow).where(id_in(session, LedgerRow.id, row_ids), LedgerRow.status == SendStatus.sending)
                        .values(status=SendStatus.reserved, attempts=LedgerRow.attempts - 1, updated_at=now),
                        execution_options={"synchronize_session": False})


def recent_marketing(session: Session, recipient_ids: Iterable[int], now: datetime,
                     window: timedelta) -> Counter[tuple[str, int]]:
    """Marketing messages sent to each recipient within the frequency window, across journeys."""
    rows = session.execute(
        select(LedgerRow.recipient_kind, LedgerRow.recipient_id, func.count())
        .where(id_in(session, LedgerRow.recipient_id, recipient_ids), LedgerRow.purpose == "marketing",
               LedgerRow.status == SendStatus.sent, LedgerRow.sent_at > now - window)
        .group_by(LedgerRow.recipient_kind, LedgerRow.recipient_id))
    return Counter({(kind, rid): n for kind, rid, n in rows})


@dataclass(frozen=True, slots=True)
class Transition:
    """What a provider's answer does to a `sending` row."""

    status: SendStatus
    reason: str | None = None
    retry_at: datetime | None = None
    """For `deferred`: when the enrollment tries the step again."""
    provider_message_id: str | None = None


def transition_for(result: DeliveryResult, attempts: int, now: datetime, max_attempts: int,
                   backoff: timedelta) -> Transition:
    """The one mapping from a DeliveryResult status to a ledger transition."""
    if result.status is DeliveryStatus.accepted:
        return Transition(SendStatus.sent, provider_message_id=result.provider_message_id)
    if result.status is DeliveryStatus.permanent:
        return Transition(SendStatus.failed, (result.error_code or result.reason or "permanent")[:64])
    if result.status is DeliveryStatus.unknown:  # never resent as is: settled from evidence (journeys/settle.py)
        return Transition(SendStatus.unknown, (result.error_code or "no_answer")[:24], retry_at=now + SETTLE_HOLD)
    if not result.handed_over:  # no request was made (circuit open): back to reserved, the attempt not spent
        return Transition(SendStatus.reserved, result.error_code, retry_at=now + backoff)
    if attempts >= max_attempts:
        return Transition(SendStatus.failed, "retries_exhausted")
    return Transition(SendStatus.deferred, f"retry:{result.error_code or 'transient'}"[:64],
                      retry_at=now + backoff * (2 ** max(attempts - 1, 0)))


def record_results(session: Session, results: Sequence[DeliveryResult], now: datetime, max_attempts: int,
                   backoff: timedelta) -> dict[int, Transition]:
    """Write each result's transition (only onto rows still `sending`); returns them by ledger id."""
    attempts = dict(session.execute(select(LedgerRow.id, LedgerRow.attempts)
                                    .where(id_in(session, LedgerRow.id, [r.ledger_id for r in results]))).all()) \
        if any(r.status is not DeliveryStatus.accepted for r in results) else {}
    out: dict[int, Transition] = {}
    sent_rows = []
    for result in results:
        t = transition_for(result, attempts.get(result.ledger_id, 0) or 0, now, max_attempts, backoff)
        out[result.ledger_id] = t
        if t.status is SendStatus.sent:
            sent_rows.append((result.ledger_id, t.provider_message_id))
        elif t.status is SendStatus.unknown:
            mark_unknown(session, result.ledger_id, t.reason or "no_answer", now)
        elif t.status is SendStatus.reserved:
            release_unsent(session, [result.ledger_id], now)
        else:
            finish(session, [result.ledger_id], t.status, t.reason, now, only_from=(SendStatus.sending,))
    at = instant_writer(session)(now)
    update_by_id(session, "sends", [("provider_message_id", "varchar")],
                 [(pid, ledger_id) for ledger_id, pid in sent_rows],
                 fixed="sent_at = {p}, updated_at = {p}, reason = NULL, status = 'sent'", fixed_params=[at, at],
                 where="t.status = 'sending'")
    return out
