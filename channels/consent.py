"""Consent and suppression records: append-only history, current state derived, loaded per chunk.

Every read here is set-based (one query for a whole chunk of recipients), because the gate runs
for tens of thousands of candidates per engine task.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from audiences.models import Member, Staff
from channels.contacts import normalise
from channels.errors import ConsentImportError
from channels.models import (
    Channel,
    ConsentAction,
    ConsentEvent,
    Purpose,
    RecipientKind,
    Suppression,
    SuppressionReason,
)
from channels.policy import ConsentState

CHUNK = 5000  # keeps IN lists under every database's bound-parameter limit


def _chunks(items: Sequence[object], size: int = CHUNK) -> Iterable[Sequence[object]]:
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
    for part in _chunks(unique_ids):
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
                ConsentEvent.recipient_id.in_(part),
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
    for part in _chunks(keys):
        rows = session.scalars(
            select(Suppression.address).where(Suppression.channel == Channel(channel), Suppression.address.in_(part))
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


# --- CSV import ---------------------------------------------------------------------------------

REQUIRED_COLUMNS = ("recipient_id", "channel", "purpose", "action", "occurred_at")
OPTIONAL_COLUMNS = ("recipient_kind", "source", "evidence")
ACTION_ALIASES = {"opt_in": "opt_in", "opt-in": "opt_in", "optin": "opt_in", "opt_out": "opt_out",
                  "opt-out": "opt_out", "optout": "opt_out"}


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    message: str


@dataclass
class ImportReport:
    path: str
    imported: int = 0
    errors: list[RowError] = field(default_factory=list)

    def summary(self) -> str:
        return f"{self.path}: {self.imported} consent events imported, {len(self.errors)} rows refused"


MAX_ID = 2**31 - 1  # the ids' INTEGER columns


def _parse_row(row: dict[str, str], now: datetime) -> dict[str, object]:
    def value(name: str) -> str:
        return (row.get(name) or "").strip()

    kind = value("recipient_kind") or "member"
    if kind not in RecipientKind.__members__:
        raise ValueError(f"recipient_kind {kind!r} is not member or staff")
    try:
        recipient_id = int(value("recipient_id"))
    except ValueError:
        raise ValueError(f"recipient_id {value('recipient_id')!r} is not an integer") from None
    if not 1 <= recipient_id <= MAX_ID:
        raise ValueError(f"recipient_id {recipient_id} is outside 1..{MAX_ID}")
    channel = value("channel").lower()
    if channel not in Channel.__members__:
        raise ValueError(f"channel {channel!r} is not email, sms or push")
    purpose = value("purpose").lower()
    if purpose not in Purpose.__members__:
        raise ValueError(f"purpose {purpose!r} is not marketing, transactional or staff")
    action = ACTION_ALIASES.get(value("action").lower())
    if action is None:
        raise ValueError(f"action {value('action')!r} is not opt_in or opt_out")
    try:
        occurred_at = datetime.fromisoformat(value("occurred_at").replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"occurred_at {value('occurred_at')!r} is not an ISO 8601 timestamp") from None
    if occurred_at.tzinfo is None:
        raise ValueError(f"occurred_at {value('occurred_at')!r} has no UTC offset")
    if occurred_at > now:  # the latest event wins: a future one would outrank every real opt-out until then
        raise ValueError(f"occurred_at {value('occurred_at')!r} is in the future")
    return {
        "recipient_kind": kind,
        "recipient_id": recipient_id,
        "channel": channel,
        "purpose": purpose,
        "action": action,
        "source": (value("source") or "csv_import")[:64],
        "occurred_at": occurred_at,
        "evidence": value("evidence") or None,
    }


def import_consent_csv(session: Session, path: str | Path, now: datetime | None = None) -> ImportReport:
    """Append the good rows as consent events; report the others by line number (header = line 1).
    Rows dated after `now` (default: the wall clock) are refused."""
    now = now or datetime.now(timezone.utc)
    path = Path(path)
    report = ImportReport(str(path))
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise ConsentImportError(f"cannot read consent file {path}: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise ConsentImportError(f"{path}:1: missing columns {', '.join(missing)} (have: {', '.join(columns)})")
        reader.fieldnames = columns
        parsed: list[tuple[int, dict[str, object]]] = []
        try:
            for row in reader:
                line = reader.line_num
                if None in row:
                    report.errors.append(RowError(line, "more fields than columns"))
                    continue
                try:
                    parsed.append((line, _parse_row(row, now)))
                except ValueError as exc:
                    report.errors.append(RowError(line, str(exc)))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ConsentImportError(f"{path}:{reader.line_num}: unreadable CSV: {exc}") from None

    known: dict[str, set[int]] = {}
    for kind, model in (("member", Member), ("staff", Staff)):
        ids = sorted({int(r["recipient_id"]) for _, r in parsed if r["recipient_kind"] == kind})  # type: ignore[call-overload]
        known[kind] = set()
        for part in _chunks(ids):
            known[kind].update(session.scalars(select(model.id).where(model.id.in_(part))))
    events = []
    for line, row in parsed:
        if row["recipient_id"] not in known[str(row["recipient_kind"])]:
            report.errors.append(RowError(line, f"no {row['recipient_kind']} with id {row['recipient_id']}"))
            continue
        events.append(
            ConsentEvent(
                recipient_kind=RecipientKind(row["recipient_kind"]),
                recipient_id=row["recipient_id"],
                channel=Channel(row["channel"]),
                purpose=Purpose(row["purpose"]),
                action=ConsentAction(row["action"]),
                source=row["source"],
                occurred_at=row["occurred_at"],
                evidence=row["evidence"] or f"{path.name}:{line}",
            )
        )
    session.add_all(events)
    session.flush()
    report.imported = len(events)
    report.errors.sort(key=lambda e: e.line)
    return report
