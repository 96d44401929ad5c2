"""The send step for a group of enrollments at the same step: reserve, check, render, deliver.

Exactly-once rests on two facts, both enforced by the database:
1. a ledger row per (enrollment, step) is reserved before anything else (unique key); and
2. only the worker whose UPDATE moves a row from reserved/deferred to `sending` hands it to an
   adapter, and that UPDATE is committed before the adapter is called.

Crash policy: a row still `reserved` or `deferred` was never handed to a provider and is sent on
resume. A row left `sending` by a crash may or may not have reached the provider: it is never
sent again, and is marked failed with reason `outcome_unknown`, which reports show (at most once
in that window, by design: a duplicate is worse than a visible gap).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from audiences.models import DeviceToken, Member, Staff
from channels.adapters.base import DeliveryStatus, OutgoingMessage, ProviderConfigError
from channels.gate import Candidate, Defer, Send as GateSend, Skip
from journeys.dsl import Journey, Send
from journeys.models import SendStatus, Send as LedgerRow
from journeys.services import Services
from journeys.stats import TickStats
from journeys.timing import deadline, parse_instant
from templates.errors import TemplateError

if TYPE_CHECKING:
    from journeys.engine import State

log = logging.getLogger("loyalflow.delivery")

# a message that cannot be rendered for this recipient fails with a reason a report can group by
RENDER_REASONS = {"SegmentBudgetExceeded": "sms_segment_budget", "PushPayloadTooLarge": "push_payload_too_large"}

FINAL = (SendStatus.sent, SendStatus.skipped, SendStatus.failed)
OPEN = (SendStatus.reserved, SendStatus.deferred)


def _reserve(session: Session, journey: Journey, step: Send, states: Sequence[State], now: datetime) -> dict[int, LedgerRow]:
    purpose = step.purpose or journey.purpose
    values = [{
        "enrollment_id": s.row.id, "step_key": step.key, "journey": journey.name,
        "recipient_kind": s.row.recipient_kind, "recipient_id": s.row.recipient_id, "purpose": purpose,
        "channel": None, "template": step.messages[0].template, "status": SendStatus.reserved.value,
        "reason": None, "attempts": 0, "reserved_at": now, "updated_at": now,
    } for s in states]
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(LedgerRow)
    session.execute(insert.on_conflict_do_nothing(index_elements=["enrollment_id", "step_key"]), values)
    session.commit()
    rows = session.execute(select(LedgerRow).where(
        LedgerRow.enrollment_id.in_([s.row.id for s in states]), LedgerRow.step_key == step.key)).scalars().all()
    return {r.enrollment_id: r for r in rows}


def _contacts(session: Session, states: Sequence[State]) -> dict[tuple[str, int], dict[str, Any]]:
    members = [s.row.recipient_id for s in states if s.row.recipient_kind == "member"]
    staff = [s.row.recipient_id for s in states if s.row.recipient_kind == "staff"]
    out: dict[tuple[str, int], dict[str, Any]] = {}
    if members:
        for m in session.execute(select(Member.id, Member.first_name, Member.email, Member.phone, Member.locale,
                                        Member.time_zone, Member.country).where(Member.id.in_(members))):
            out[("member", m.id)] = {"first_name": m.first_name, "email": m.email, "sms": m.phone, "push": None,
                                     "locale": m.locale, "time_zone": m.time_zone, "country": m.country}
        newest = (select(DeviceToken.member_id, func.max(DeviceToken.id).label("id"))
                  .where(DeviceToken.member_id.in_(members), DeviceToken.revoked_at.is_(None))
                  .group_by(DeviceToken.member_id).subquery())
        for member_id, token in session.execute(select(DeviceToken.member_id, DeviceToken.token)
                                                .join(newest, newest.c.id == DeviceToken.id)):
            out[("member", member_id)]["push"] = token
    if staff:
        for p in session.execute(select(Staff.id, Staff.first_name, Staff.email, Staff.phone, Staff.locale,
                                        Staff.time_zone).where(Staff.id.in_(staff))):
            out[("staff", p.id)] = {"first_name": p.first_name, "email": p.email, "sms": p.phone, "push": None,
                                    "locale": p.locale, "time_zone": p.time_zone, "country": None}
    return out


def _recent_marketing(session: Session, states: Sequence[State], now: datetime, services: Services) -> Counter[tuple[str, int]]:
    ids = [s.row.recipient_id for s in states]
    rows = session.execute(
        select(LedgerRow.recipient_kind, LedgerRow.recipient_id, func.count())
        .where(LedgerRow.recipient_id.in_(ids), LedgerRow.purpose == "marketing",
               LedgerRow.status == SendStatus.sent, LedgerRow.sent_at > now - services.frequency_window)
        .group_by(LedgerRow.recipient_kind, LedgerRow.recipient_id))
    return Counter({(kind, rid): n for kind, rid, n in rows})


def _finish(session: Session, row_ids: Sequence[int], status: SendStatus, reason: str | None, now: datetime,
            only_from: Sequence[SendStatus] = OPEN) -> None:
    if row_ids:
        session.execute(update(LedgerRow).where(LedgerRow.id.in_(row_ids), LedgerRow.status.in_(only_from))
                        .values(status=status, reason=reason, updated_at=now),
                        execution_options={"synchronize_session": False})


def deliver(session: Session, journey: Journey, states: list[State], now: datetime, services: Services,
            stats: TickStats) -> None:
    step: Send = states[0].program[states[0].pc]  # type: ignore[assignment]
    purpose = step.purpose or journey.purpose
    ledger = _reserve(session, journey, step, states, now)

    def advance(s: State) -> None:
        s.pc += 1

    def park(s: State, until: datetime) -> None:
        s.due, s.parked = until, True

    live: list[State] = []
    for s in states:
        row = ledger[s.row.id]
        if row.status in FINAL:  # done before a crash: move on, never again
            advance(s)
        elif row.status == SendStatus.sending:
            log.warning("ledger row %s was left in flight by a crash: marked outcome_unknown, not resent", row.id)
            _finish(session, [row.id], SendStatus.failed, "outcome_unknown", now, only_from=(SendStatus.sending,))
            stats.failed["outcome_unknown"] += 1
            advance(s)
        else:
            live.append(s)
    stale = [s for s in live if (d := deadline(step.stale or journey.stale, s.context, s.row.enrolled_at)) and now > d]
    _finish(session, [ledger[s.row.id].id for s in stale], SendStatus.skipped, "stale", now)
    if stale:
        stats.skipped["stale"] += len(stale)
    for s in stale:
        advance(s)
    stale_ids = {id(s) for s in stale}  # by identity: a list `in` compares States field by field
    live = [s for s in live if id(s) not in stale_ids]
    if not live:
        session.commit()
        return

    contacts = _contacts(session, live)
    recent = _recent_marketing(session, live, now, services) if purpose == "marketing" else Counter()
    candidates: list[Candidate] = []
    for s in live:
        info = contacts.get((s.row.recipient_kind, s.row.recipient_id), {})
        for message in step.messages:
            candidates.append(Candidate(
                recipient_kind=s.row.recipient_kind, recipient_id=s.row.recipient_id, channel=message.channel,
                purpose=purpose, address=info.get(message.channel), time_zone=info.get("time_zone") or "UTC",
                country=info.get("country"), priority=journey.priority,
                recent_marketing_sends=recent[(s.row.recipient_kind, s.row.recipient_id)]))
    verdicts = services.gate(session, now, candidates)

    chosen: list[tuple[State, Any, str]] = []  # (state, message, address)
    skipped: dict[str, list[State]] = defaultdict(list)
    i = 0
    for s in live:
        decision: tuple[str, Any] | None = None
        reasons = []
        for message in step.messages:
            verdict = verdicts[i]
            i += 1
            if decision is not None:
                continue
            if isinstance(verdict, GateSend):
                decision = ("send", (message, verdict.address))
            elif isinstance(verdict, Defer):
                decision = ("defer", verdict.until)
            elif isinstance(verdict, Skip):
                reasons.append(verdict.reason.value)
        if decision is None:
            skipped["|".join(dict.fromkeys(reasons))[:64]].append(s)
        elif decision[0] == "defer":
            row = ledger[s.row.id]
            _finish(session, [row.id], SendStatus.deferred, "quiet_hours", now)
            park(s, decision[1])
        else:
            chosen.append((s, decision[1][0], decision[1][1]))
    for reason, group in skipped.items():
        _finish(session, [ledger[s.row.id].id for s in group], SendStatus.skipped, reason, now)
        stats.skipped[reason] += len(group)
        for s in group:
            advance(s)

    # the exclusive hand-over: only rows this UPDATE moves to `sending` may leave, once
    if chosen:
        table = LedgerRow.__table__
        session.execute(  # one executemany: which channel and template each row goes out on
            update(table).where(table.c.id == bindparam("b_id"),
                                or_(*(table.c.status == st.value for st in OPEN)))
            .values(channel=bindparam("b_channel"), template=bindparam("b_template")),
            [{"b_id": ledger[s.row.id].id, "b_channel": m.channel, "b_template": m.template} for s, m, _ in chosen])
    mine = set(session.execute(
        update(LedgerRow).where(LedgerRow.id.in_([ledger[s.row.id].id for s, _, _ in chosen]),
                                LedgerRow.status.in_(OPEN))
        .values(status=SendStatus.sending, attempts=LedgerRow.attempts + 1, updated_at=now)
        .returning(LedgerRow.id), execution_options={"synchronize_session": False}).scalars())
    session.commit()
    chosen = [c for c in chosen if ledger[c[0].row.id].id in mine]

    contexts = []
    for s, message, _ in chosen:
        info = contacts.get((s.row.recipient_kind, s.row.recipient_id), {})
        ctx = {k: parse_instant(v) if k.endswith("_at") and isinstance(v, str) else v for k, v in s.context.items()}
        ctx.update({k: info.get(k, ctx.get(k)) for k in ("first_name", "locale", "time_zone")})
        ctx["recipient_id"] = s.row.recipient_id
        contexts.append(ctx)
    if journey.enrich is not None and contexts:
        contexts = journey.enrich(session, now, contexts)

    outgoing: dict[str, list[tuple[State, OutgoingMessage]]] = defaultdict(list)
    render_failed: list[tuple[State, str]] = []
    for (s, message, address), ctx in zip(chosen, contexts):
        ledger_id = ledger[s.row.id].id
        links = services.links(s.row.recipient_kind, s.row.recipient_id, message.channel, purpose)
        ctx.update({"program": services.program, "links": links})
        tpl_journey, tpl_step = message.template.split("/", 1)
        try:
            content = services.renderer.render(tpl_journey, tpl_step, ctx.get("locale") or "en", ctx)
        except TemplateError as exc:
            place = ":".join(str(exc).split(":")[:2])  # file:line only: the rest may quote personal data
            log.error("ledger row %s: template %s failed at %s (%s)", ledger_id, message.template, place,
                      type(exc).__name__)
            render_failed.append((s, RENDER_REASONS.get(type(exc).__name__, "render_error")))
            continue
        outgoing[message.channel].append((s, OutgoingMessage(
            ledger_id=ledger_id, channel=message.channel, purpose=purpose, journey=journey.name, step=step.key,
            recipient_kind=s.row.recipient_kind, recipient_id=s.row.recipient_id, to=address, content=content,
            unsubscribe_url=links.get("unsubscribe_url") if purpose == "marketing" else None,
            categories=(journey.name, step.key))))
    for s, reason in render_failed:
        _finish(session, [ledger[s.row.id].id], SendStatus.failed, reason, now, only_from=(SendStatus.sending,))
        stats.failed[reason] += 1
        advance(s)
    session.commit()

    for channel, pairs in outgoing.items():
        adapter = services.adapters.get(channel)
        if adapter is None:
            _finish(session, [m.ledger_id for _, m in pairs], SendStatus.failed, "channel_not_configured", now,
                    only_from=(SendStatus.sending,))
            stats.failed["channel_not_configured"] += len(pairs)
            for s, _ in pairs:
                advance(s)
            session.commit()
            continue
        messages = [m for _, m in pairs]
        try:
            results = adapter.send(messages)
        except ProviderConfigError as exc:
            # record what the provider settled before refusing us (matched by ledger id: sending is
            # concurrent); what it never accepted goes back to `reserved`, to go once credentials work
            settled = list(exc.results or [])
            settled_ids = {r.ledger_id for r in settled}
            _record(session, [p for p in pairs if p[1].ledger_id in settled_ids], settled, now, services, stats,
                    adapter.provider, advance, park)
            unsent = [m.ledger_id for m in messages if m.ledger_id not in settled_ids]
            session.execute(update(LedgerRow).where(LedgerRow.id.in_(unsent), LedgerRow.status == SendStatus.sending)
                            .values(status=SendStatus.reserved, attempts=LedgerRow.attempts - 1, updated_at=now),
                            execution_options={"synchronize_session": False})
            session.commit()
            raise
        _record(session, pairs, results, now, services, stats, adapter.provider, advance, park)
        session.commit()


def _record(session: Session, pairs: Sequence[tuple[State, OutgoingMessage]], results: Sequence[Any], now: datetime,
            services: Services, stats: TickStats, provider: str, advance: Any, park: Any) -> None:
    by_id = {m.ledger_id: (s, m) for s, m in pairs}
    sent_rows = []
    for result in results:
        s, message = by_id[result.ledger_id]
        if result.status is DeliveryStatus.accepted:
            sent_rows.append({"b_id": result.ledger_id, "b_pid": result.provider_message_id})
            stats.sent[message.channel] += 1
            advance(s)
        elif result.status is DeliveryStatus.permanent:
            reason = (result.error_code or result.reason or "permanent")[:64]
            _finish(session, [result.ledger_id], SendStatus.failed, reason, now, only_from=(SendStatus.sending,))
            stats.failed[reason] += 1
            advance(s)
        else:
            attempts = session.scalar(select(LedgerRow.attempts).where(LedgerRow.id == result.ledger_id)) or 0
            if attempts >= services.max_attempts:
                _finish(session, [result.ledger_id], SendStatus.failed, "retries_exhausted", now,
                        only_from=(SendStatus.sending,))
                stats.failed["retries_exhausted"] += 1
                advance(s)
            else:
                reason = f"retry:{result.error_code or 'transient'}"[:64]
                _finish(session, [result.ledger_id], SendStatus.deferred, reason, now, only_from=(SendStatus.sending,))
                park(s, now + services.retry_backoff * (2 ** (attempts - 1)))
    if sent_rows:
        session.execute(
            update(LedgerRow.__table__).where(LedgerRow.__table__.c.id == bindparam("b_id"),
                                              LedgerRow.__table__.c.status == SendStatus.sending.value)
            .values(status=SendStatus.sent.value, provider_message_id=bindparam("b_pid"), sent_at=now, updated_at=now,
                    reason=None),
            sent_rows)
    services.feedback(session, now, provider, [m for _, m in pairs], results)

