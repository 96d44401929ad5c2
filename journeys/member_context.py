"""A real member's render context for `loyalflow preview --member N`, from the same three sources as a
send (the audience row, the enricher, the base context), saying which names fell back to samples."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from audiences.errors import UnknownRecipient
from journeys.contract import contract_for
from journeys.dsl import Journey
from journeys.models import Enrollment
from journeys.timing import parse_instant
from templates.context_contract import BASE_CONTEXT
from templates.samples import sample_context

_MEMBER_FIELDS = ("first_name", "locale", "time_zone")


@dataclass
class MemberContext:
    context: dict[str, Any]
    real: list[str] = field(default_factory=list)
    """Names filled from the member's data (audience row, enrollment, member record, enricher)."""
    sampled: list[str] = field(default_factory=list)
    """Names the contract declares that no real source gave: shown with sample values."""
    note: str = ""
    """Where the real figures came from, e.g. "audience 'points_expiring' (in it now)"."""


def _recipient(session: Session, kind: str, recipient_id: int) -> dict[str, Any]:
    from audiences.models import Member, Staff

    row = session.get(Staff if kind == "staff" else Member, recipient_id)
    if row is None:
        raise UnknownRecipient(f"no {kind} with id {recipient_id} in the database")
    return {"recipient_id": row.id, **{k: getattr(row, k, None) for k in _MEMBER_FIELDS}}


def _journey_fields(session: Session, journey: Journey, recipient_id: int, now: datetime) -> tuple[dict[str, Any], str]:
    """The member's own row: the audience's (included first), else their latest enrollment's context."""
    if journey.audience is not None:
        from audiences.queries import get_audience

        why = get_audience(journey.audience).explain(session, now, recipient_id, **journey.audience_params)
        rows = sorted(why.rows, key=lambda r: not r.included)
        if rows:
            state = "in it now" if rows[0].included else "not in it now: its nearest row"
            return dict(rows[0].fields), f"audience {journey.audience!r} ({state})"
    context = session.execute(
        select(Enrollment.context).where(Enrollment.journey == journey.name, Enrollment.recipient_id == recipient_id)
        .order_by(Enrollment.enrolled_at.desc(), Enrollment.id.desc()).limit(1)).scalar()
    if context:
        values = {k: parse_instant(v) if k.endswith("_at") and isinstance(v, str) else v for k, v in context.items()}
        return values, f"the member's latest {journey.name} enrollment"
    return {}, "no audience row or enrollment"


def member_context(session: Session, journey: Journey, recipient_id: int, locale: str | None,
                   now: datetime) -> MemberContext:
    contract = contract_for(journey)
    from audiences.queries import get_audience

    kind = get_audience(journey.audience).recipient if journey.audience is not None else "member"
    person = _recipient(session, kind, recipient_id)
    chosen = locale or str(person.get("locale") or "en")
    context = sample_context(journey.name, chosen, contract=contract)
    real: set[str] = set()
    own, note = _journey_fields(session, journey, recipient_id, now)
    declared = set(contract.fields) if contract is not None else set(own)
    for name, value in own.items():
        if name in declared and name not in BASE_CONTEXT:
            context[name] = value
            real.add(name)
    for name, value in person.items():
        if value is not None and name != "locale":
            context[name] = value
            real.add(name)
    if locale is not None or person.get("locale"):
        real.add("locale")  # the member's, or the one asked for: not a sample either way
    if journey.enrich is not None:
        enriched = journey.enrich(session, now, [dict(context)])[0]
        for name in (contract.enriched if contract is not None else {}):
            if name in enriched:
                context[name] = enriched[name]
                real.add(name)
    names = contract.names() if contract is not None else frozenset(context)
    sampled = sorted(n for n in names if n not in real)
    return MemberContext(context, sorted(real), sampled, note)
