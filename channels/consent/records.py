"""Consent history: append-only events, the current state derived (the latest event wins), loaded
per chunk of recipients, because the gate asks for tens of thousands of candidates at once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audiences.id_lists import id_in
from channels.models import ConsentAction, ConsentEvent
from templates.vocabulary import Channel, Purpose, RecipientKind
from channels.policy import ConsentState

CHUNK = 5000  # keeps IN lists under every database's bound-parameter limit


def chunks(items: Sequence[object], size: int = CHUNK) -> Iterable[Sequence[object]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def record_consent(
    session: Session,
    *,
    recipient_kind: str,
    recipient_id: int,
    channel: str,
    purpose: str,
    action: str,
    source: str,
    occurred_at: datetime,
    evidence: str | None = None,
) -> ConsentEvent:
    event = ConsentEvent(
        recipient_kind=RecipientKind(recipient_kind),
        recipient_id=recipient_id,
        channel=Channel(channel),
        purpose=Purpose(purpose),
        action=ConsentAction(action),
        source=source,
        occurred_at=occurred_at,
        evidence=evidence,
    )
    session.add(event)
    session.flush()
    return event


def current_consent(
    session: Session, kind: str, ids: Sequence[int], channel: str, purpose: str
) -> dict[int, ConsentState]:
    """Every id given maps to its current state (unknown when it has no event)."""
    states = {i: ConsentState.unknown for i in ids}
    unique_ids = sorted(set(ids))
    for part in chunks(unique_ids):
        ranked = (
            select(
                ConsentEvent.recipient_id,
                ConsentEvent.action,
                func.row_number()
                .over(
                    partition_by=ConsentEvent.recipient_id,
                    order_by=(ConsentEvent.occurred_at.desc(), ConsentEvent.id.desc()),
                )
                .label("rank"),
            )
            .where(
                ConsentEvent.recipient_kind == RecipientKind(kind),
                ConsentEvent.channel == Channel(channel),
                ConsentEvent.purpose == Purpose(purpose),
                id_in(session, ConsentEvent.recipient_id, part),
            )
            .subquery()
        )
        for recipient_id, action in session.execute(
            select(ranked.c.recipient_id, ranked.c.action).where(ranked.c.rank == 1)
        ):
            states[recipient_id] = (
                ConsentState.opted_in if ConsentAction(action) is ConsentAction.opt_in else ConsentState.opted_out
            )
    return states
