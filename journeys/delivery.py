"""The send step for a group of enrollments at the same step: reserve, check, render, deliver.

Exactly-once rests on two facts, both enforced by the database:
1. a ledger row per (enrollment, step) is reserved before anything else (unique key); and
2. only the worker whose UPDATE moves a row from reserved/deferred to `sending` hands it to an
   adapter, and that UPDATE is committed before the adapter is called.

Crash policy: a row still `reserved` or `deferred` was never handed to a provider and is sent on
resume. A row left `sending` by a crash, like a row whose request got no answer (`unknown`), may
or may not have reached the provider: it is never resent as it is, but settled from evidence
(journeys/settle.py): provider events or lookup -> sent; proven absent -> sent again; no
evidence after the hold -> failed `outcome_unknown`, which reports show.

The ledger operations are in journeys/ledger.py; this module decides, per enrollment, and hands
the engine an Outcome (advance, or park until an instant) instead of touching its state.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audiences.models import DeviceToken, Member, Staff
from channels.adapters.base import OutgoingMessage, ProviderConfigError
from channels.adapters.headers import clean_text
from channels.gate import Candidate, Defer, Skip
from channels.gate import Send as GateSend
from channels.settlement import fingerprint
from journeys.bulk import id_in
from journeys import ledger as ledger_ops
from journeys import variants
from journeys.dsl import Journey, Message, Send
from journeys.ledger import FINAL
from journeys.models import SendStatus
from journeys.services import Services
from journeys.settle import UNSETTLED, note_fingerprints, settle_rows
from journeys.state import Advance, EnrollmentRow, Outcome, Park
from journeys.stats import TickStats
from journeys.timing import deadline, parse_instant
from journeys.zones import OWN, Zone, resolve, usable
from templates.errors import TemplateError

log = logging.getLogger("loyalflow.delivery")

# a message that cannot be rendered for this recipient fails with a reason a report can group by
RENDER_REASONS = {"SegmentBudgetExceeded": "sms_segment_budget", "PushPayloadTooLarge": "push_payload_too_large"}

NEXT = Advance()


def _contacts(session: Session, rows: Sequence[EnrollmentRow]) -> dict[tuple[str, int], dict[str, Any]]:
    members = [r.recipient_id for r in rows if r.recipient_kind == "member"]
    staff = [r.recipient_id for r in rows if r.recipient_kind == "staff"]
    out: dict[tuple[str, int], dict[str, Any]] = {}
    if members:
        for m in session.execute(select(Member.id, Member.first_name, Member.email, Member.phone, Member.locale,
                                        Member.time_zone, Member.country).where(id_in(session, Member.id, members))):
            out[("member", m.id)] = {"first_name": m.first_name, "email": m.email, "sms": m.phone, "push": None,
                                     "locale": m.locale, "time_zone": m.time_zone, "country": m.country}
        newest = (select(DeviceToken.member_id, func.max(DeviceToken.id).label("id"))
                  .where(id_in(session, DeviceToken.member_id, members), DeviceToken.revoked_at.is_(None))
                  .group_by(DeviceToken.member_id).subquery())
        for member_id, token in session.execute(select(DeviceToken.member_id, DeviceToken.token)
                                                .join(newest, newest.c.id == DeviceToken.id)):
            out[("member", member_id)]["push"] = token
    if staff:
        for p in session.execute(select(Staff.id, Staff.first_name, Staff.email, Staff.phone, Staff.locale,
                                        Staff.time_zone).where(id_in(session, Staff.id, staff))):
            out[("staff", p.id)] = {"first_name": p.first_name, "email": p.email, "sms": p.phone, "push": None,
                                    "locale": p.locale, "time_zone": p.time_zone, "country": None}
    return out


def _zones(session: Session, live: Sequence[EnrollmentRow], contacts: dict[tuple[str, int], dict[str, Any]],
           services: Services, stats: TickStats,
           known: Mapping[tuple[str, int], Zone] | None = None) -> dict[tuple[str, int], Zone]:
    """Each recipient's zone for quiet hours, with the store/default fallback counted (never silent).

    `known`: the zones the engine resolved for this chunk. A recipient whose own (current) zone is
    unusable takes its known store/default fallback instead of a second query for it."""
    zones: dict[tuple[str, int], Zone] = {}
    todo: list[tuple[str, int, str | None]] = []
    for r in live:
        key = (r.recipient_kind, r.recipient_id)
        own = contacts.get(key, {}).get("time_zone")
        if usable(own):
            zones[key] = Zone(own, OWN)
        elif known is not None and (hint := known.get(key)) is not None and hint.source != OWN:
            zones[key] = hint  # the store's or the default: found without the own zone
        else:
            todo.append((r.recipient_kind, r.recipient_id, own))
    if todo:
        zones.update(resolve(session, todo, services.default_time_zone))
    fallbacks = Counter(z.source for z in zones.values() if z.source != OWN)
    if fallbacks:
        stats.zone_fallback.update(fallbacks)
        log.info("no usable own time zone for %s recipient(s): %s", sum(fallbacks.values()), dict(fallbacks))
    return zones


def deliver(session: Session, journey: Journey, step: Send, rows: Sequence[EnrollmentRow], now: datetime,
            services: Services, stats: TickStats,
            zones_known: Mapping[tuple[str, int], Zone] | None = None) -> dict[int, Outcome]:
    """Run one send step for enrollments all at `step`; returns an Outcome per enrollment id.

    Raises ProviderConfigError (after recording what the provider settled) when a provider refuses
    the credentials: the run stops, the enrollments stay due, nothing is lost."""
    purpose = step.purpose or journey.purpose
    ledger = ledger_ops.reserve(session, journey, step, rows, now)
    outcomes: dict[int, Outcome] = {}

    live: list[EnrollmentRow] = []
    unsettled: list[EnrollmentRow] = []
    for r in rows:
        row = ledger[r.id]
        if row.status in FINAL:  # done before a crash: move on, never again
            outcomes[r.id] = NEXT
        elif row.status in UNSETTLED:  # no answer, or left in flight by a crash: evidence first, never resent blindly
            unsettled.append(r)
        else:
            live.append(r)
    settled = settle_rows(session, [ledger[r.id] for r in unsettled], now, services, stats)
    for r in unsettled:
        verdict = settled[ledger[r.id].id]
        if verdict is None:  # proven absent at the provider: goes again, like any reserved row
            live.append(r)
        else:
            outcomes[r.id] = verdict
    stale = [r for r in live if (d := deadline(step.stale or journey.stale, r.context or {}, r.enrolled_at))
             and now > d]
    ledger_ops.finish(session, [ledger[r.id].id for r in stale], SendStatus.skipped, "stale", now)
    if stale:
        stats.skipped["stale"] += len(stale)
    for r in stale:
        outcomes[r.id] = NEXT
    live = [r for r in live if r.id not in outcomes]
    if not live:
        session.commit()
        return outcomes

    contacts = _contacts(session, live)
    zones = _zones(session, live, contacts, services, stats, zones_known)
    recent = (ledger_ops.recent_marketing(session, [r.recipient_id for r in live], now, services.frequency_window)
              if purpose == "marketing" else Counter())
    candidates: list[Candidate] = []
    for r in live:
        key = (r.recipient_kind, r.recipient_id)
        info = contacts.get(key, {})
        time_zone = zones[key].name or info.get("time_zone") or ""  # unusable: the gate skips it, with its reason
        for message in step.messages:
            candidates.append(Candidate(
                recipient_kind=r.recipient_kind, recipient_id=r.recipient_id, channel=message.channel,
                purpose=purpose, address=info.get(message.channel), time_zone=time_zone,
                country=info.get("country"), priority=journey.priority, recent_marketing_sends=recent[key]))
    verdicts = services.gate(session, now, candidates)

    chosen: list[tuple[EnrollmentRow, Message, str]] = []  # (enrollment, message, address)
    skipped: dict[str, list[EnrollmentRow]] = defaultdict(list)
    quiet: list[int] = []
    i = 0
    for r in live:
        decision: GateSend | Defer | None = None
        message_for: Message | None = None
        reasons = []
        for message in step.messages:  # the fallback chain: the first channel that may go, or defer
            verdict = verdicts[i]
            i += 1
            if decision is not None:
                continue
            if isinstance(verdict, (GateSend, Defer)):
                decision, message_for = verdict, message
            elif isinstance(verdict, Skip):
                reasons.append(verdict.reason.value)
        if decision is None:
            skipped["|".join(dict.fromkeys(reasons))[:64]].append(r)
        elif isinstance(decision, Defer):
            quiet.append(ledger[r.id].id)
            outcomes[r.id] = Park(decision.until)
        else:
            chosen.append((r, message_for, decision.address))  # type: ignore[arg-type]
    ledger_ops.finish(session, quiet, SendStatus.deferred, "quiet_hours", now)
    for reason, group in skipped.items():
        ledger_ops.finish(session, [ledger[r.id].id for r in group], SendStatus.skipped, reason, now)
        stats.skipped[reason] += len(group)
        for r in group:
            outcomes[r.id] = NEXT

    chosen = variants.apply(session, journey, step, chosen)  # A/B: each enrollment's variant's template
    # the exclusive hand-over: only rows this UPDATE moves to `sending` may leave, once
    mine = ledger_ops.hand_over(session, [(ledger[r.id].id, m.channel, m.template) for r, m, _ in chosen], now)
    chosen = [c for c in chosen if ledger[c[0].id].id in mine]

    contexts = []
    for r, message, _ in chosen:
        key = (r.recipient_kind, r.recipient_id)
        info = contacts.get(key, {})
        ctx = {k: parse_instant(v) if k.endswith("_at") and isinstance(v, str) else v
               for k, v in (r.context or {}).items()}
        ctx.update({k: info.get(k, ctx.get(k)) for k in ("first_name", "locale", "time_zone")})
        if isinstance(ctx.get("first_name"), str):  # no control characters from member data into any part
            ctx["first_name"] = clean_text(ctx["first_name"])
        ctx["time_zone"] = zones[key].name or ctx.get("time_zone")
        ctx["recipient_id"] = r.recipient_id
        ctx["ledger_id"] = ledger[r.id].id  # names the message in survey and read links (journeys/surveys.py)
        contexts.append(ctx)
    if journey.enrich is not None and contexts:
        contexts = journey.enrich(session, now, contexts)

    outgoing: dict[str, list[tuple[EnrollmentRow, OutgoingMessage]]] = defaultdict(list)
    for (r, message, address), ctx in zip(chosen, contexts):
        ledger_id = ledger[r.id].id
        links = services.links(r.recipient_kind, r.recipient_id, message.channel, purpose)
        ctx.update({"program": services.program, "links": links})
        tpl_journey, tpl_step = message.template.split("/", 1)
        try:
            locale = ctx.get("locale") or services.program.get("default_locale", "en")
            content = services.renderer.render(tpl_journey, tpl_step, locale, ctx)
        except TemplateError as exc:
            place = exc.place  # file:line only: the message may quote personal data
            log.error("ledger row %s: template %s failed at %s (%s)", ledger_id, message.template, place,
                      type(exc).__name__)
            reason = RENDER_REASONS.get(type(exc).__name__, "render_error")
            ledger_ops.finish(session, [ledger_id], SendStatus.failed, reason, now, only_from=(SendStatus.sending,))
            stats.failed[reason] += 1
            outcomes[r.id] = NEXT
            continue
        outgoing[message.channel].append((r, OutgoingMessage(
            ledger_id=ledger_id, channel=message.channel, purpose=purpose, journey=journey.name, step=step.key,
            recipient_kind=r.recipient_kind, recipient_id=r.recipient_id, to=address, content=content,
            unsubscribe_url=links.get("unsubscribe_url") if purpose == "marketing" else None,
            categories=(journey.name, step.key), created_at=now)))
    note_fingerprints(session, {m.ledger_id: fingerprint(m.content) for channel, pairs in outgoing.items()
                                if hasattr(services.adapters.get(channel), "lookup") for _, m in pairs})
    session.commit()

    for channel, pairs in outgoing.items():
        adapter = services.adapters.get(channel)
        if adapter is None:
            ledger_ops.finish(session, [m.ledger_id for _, m in pairs], SendStatus.failed, "channel_not_configured",
                              now, only_from=(SendStatus.sending,))
            stats.failed["channel_not_configured"] += len(pairs)
            outcomes.update({r.id: NEXT for r, _ in pairs})
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
                    adapter.provider)
            ledger_ops.release_unsent(session, [m.ledger_id for m in messages if m.ledger_id not in settled_ids], now)
            session.commit()
            raise
        outcomes.update(_record(session, pairs, results, now, services, stats, adapter.provider))
        session.commit()
    return outcomes


def _record(session: Session, pairs: Sequence[tuple[EnrollmentRow, OutgoingMessage]], results: Sequence[Any],
            now: datetime, services: Services, stats: TickStats, provider: str) -> dict[int, Outcome]:
    """Write the provider's answers to the ledger; a retry parks the enrollment until its backoff ends."""
    by_id = {m.ledger_id: (r, m) for r, m in pairs}
    outcomes: dict[int, Outcome] = {}
    transitions = ledger_ops.record_results(session, results, now, services.max_attempts, services.retry_backoff)
    for ledger_id, t in transitions.items():
        enrollment, message = by_id[ledger_id]
        if t.status is SendStatus.sent:
            stats.sent[message.channel] += 1
        elif t.status is SendStatus.failed:
            stats.failed[t.reason or "failed"] += 1
        outcomes[enrollment.id] = Park(t.retry_at) if t.retry_at is not None else NEXT
    services.feedback(session, now, provider, [m for _, m in pairs], results)
    return outcomes
