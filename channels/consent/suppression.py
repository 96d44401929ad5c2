"""The suppression list: addresses that receive nothing (bounces, complaints, STOP), keyed by their
normalised form, read set-based for a whole chunk of recipients."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from audiences.id_lists import text_in
from channels.consent.records import chunks
from channels.contacts import normalise
from channels.models import Suppression, SuppressionReason
from templates.vocabulary import Channel


def suppressed_addresses(
    session: Session, channel: str, addresses: Iterable[str], *, normalised: bool = False
) -> set[str]:
    """The subset of `addresses` (as given) whose normalised form is on the suppression list.
    `normalised=True` says the caller already normalised them (the gate does), saving the work."""
    by_key: dict[str, list[str]] = {}
    for address in addresses:
        by_key.setdefault(address if normalised else normalise(channel, address), []).append(address)
    found: set[str] = set()
    keys = sorted(by_key)
    for part in chunks(keys):
        rows = session.scalars(
            select(Suppression.address).where(Suppression.channel == Channel(channel), text_in(session, Suppression.address, part))
        )
        for key in rows:
            found.update(by_key[key])
    return found


def suppress(
    session: Session, *, channel: str, address: str, reason: str, source: str, at: datetime
) -> bool:
    """Add an address to the suppression list; False when it was already there (first reason kept)."""
    values = {
        "channel": Channel(channel),
        "address": normalise(channel, address),
        "reason": SuppressionReason(reason),
        "source": source,
        "created_at": at,
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(Suppression)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["channel", "address"])
        .returning(Suppression.id)
    )
    return session.execute(stmt).scalar_one_or_none() is not None
