"""Member events in: validate each one on its own, store the good ones once, say what became of each.

The same rules hold for `POST /v1/events` and `loyalflow events import`: one bad event is reported
(its index or line, the field, why) and never stops the others; a repeated idempotency key is a
no-op reported as `duplicate`; nothing here logs or echoes a property value (they may be personal).

Ordering: consumers read the table by id (a cursor), so an id must never become visible after a
larger one. SQLite has one writer at a time; on PostgreSQL each ingest transaction takes an
advisory lock first, so ids are handed out in commit order.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, func, select, text, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from audiences.models import Event, Member

MAX_CLOCK_SKEW = timedelta(minutes=5)
"""An event may claim to have happened this far in the future (the sender's clock runs ahead)."""
MAX_PROPERTIES_BYTES = 16_384
TYPE_PATTERN = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
PROPERTY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,128}")  # printable ASCII, no spaces
FIELDS = ("type", "member_id", "occurred_at", "idempotency_key", "properties")
RESERVED_PROPERTIES = frozenset({
    # what the enrollment context and the render context already hold (journeys/triggers.py, delivery)
    "event_id", "event_type", "occurred_at", "recipient_id", "first_name", "locale", "time_zone",
    "program", "links",
})
INSERT_CHUNK = 500
ADVISORY_LOCK = 0x6C66_6576  # "lfev"

Status = Literal["accepted", "duplicate", "error"]


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


@dataclass(frozen=True)
class EventIn:
    """A valid event, ready to store."""

    type: str
    member_id: int
    occurred_at: datetime
    idempotency_key: str
    properties: dict[str, Any]


@dataclass
class EventResult:
    index: int
    """Position in the request's batch (0-based), or line number in a file (1-based)."""
    status: Status
    event_id: int | None = None
    errors: list[FieldError] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "status": self.status}
        if self.event_id is not None:
            out["event_id"] = self.event_id
        if self.errors:
            out["errors"] = [{"field": e.field, "message": e.message} for e in self.errors]
        return out


def _parse_time(value: Any, now: datetime) -> tuple[datetime | None, str | None]:
    if not isinstance(value, str):
        return None, "must be an ISO 8601 date-time string with a time zone, e.g. 2026-11-23T10:00:00Z"
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None, "is not an ISO 8601 date-time (e.g. 2026-11-23T10:00:00Z)"
    if parsed.tzinfo is None:
        return None, "has no time zone (add Z or an offset such as +01:00): a naive time is ambiguous"
    parsed = parsed.astimezone(timezone.utc)
    if parsed > now + MAX_CLOCK_SKEW:
        return None, f"is more than {int(MAX_CLOCK_SKEW.total_seconds() // 60)} minutes in the future"
    return parsed, None


def _check_properties(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "must be a JSON object"
    for name in value:
        if not PROPERTY_NAME.fullmatch(name):
            return f"property name {name[:64]!r} must be a plain identifier (letters, digits, _)"
        if name in RESERVED_PROPERTIES:
            return f"property name {name!r} is reserved (loyalflow sets it)"
    if len(json.dumps(value, separators=(",", ":"), default=str)) > MAX_PROPERTIES_BYTES:
        return f"is larger than {MAX_PROPERTIES_BYTES} bytes"
    return None


def validate(raw: Any, now: datetime) -> EventIn | list[FieldError]:
    """One event from decoded JSON; every problem of it at once, each naming its field."""
    if not isinstance(raw, dict):
        return [FieldError("", "an event must be a JSON object")]
    errors: list[FieldError] = []
    for name in raw:
        if name not in FIELDS:
            errors.append(FieldError(str(name)[:64], f"unknown field; an event has {', '.join(FIELDS)}"))
    kind = raw.get("type")
    if not isinstance(kind, str) or not TYPE_PATTERN.fullmatch(kind):
        errors.append(FieldError("type", "is required: lower-case letters, digits, '_', '.' or '-' "
                                         "(at most 64, starting with a letter), e.g. purchase"))
    member_id = raw.get("member_id")
    if isinstance(member_id, bool) or not isinstance(member_id, int) or not 0 < member_id < 2**31:
        errors.append(FieldError("member_id", "is required: a positive integer member id"))
    occurred_at, why = _parse_time(raw.get("occurred_at"), now)
    if why:
        errors.append(FieldError("occurred_at", why if "occurred_at" in raw else "is required"))
    key = raw.get("idempotency_key")
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        errors.append(FieldError("idempotency_key", "is required: 1-128 printable ASCII characters, no spaces, "
                                                    "unique per event (a retry reuses it)"))
    properties = raw.get("properties", {})
    why = _check_properties(properties)
    if why:
        errors.append(FieldError("properties", why))
    if errors:
        return errors
    return EventIn(kind, member_id, occurred_at, key, properties)  # type: ignore[arg-type]


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK})


def store(session: Session, events: Sequence[tuple[int, EventIn]], now: datetime, source: str) -> list[EventResult]:
    """Store valid events (each with its index) in the caller's transaction; commit is the caller's.

    A member id that does not exist is a per-event error; a key already stored, or repeated
    earlier in the same batch, is a duplicate.
    """
    if not events:
        return []
    _lock(session)
    members = {e.member_id for _, e in events}
    known: set[int] = set()
    for part in _chunks(sorted(members), 1000):
        known.update(session.scalars(select(Member.id).where(Member.id.in_(part))))
    results: dict[int, EventResult] = {}
    fresh: list[tuple[int, EventIn]] = []
    seen: set[str] = set()
    for index, event in events:
        if event.member_id not in known:
            results[index] = EventResult(index, "error", errors=[FieldError("member_id", "no member has this id")])
        elif event.idempotency_key in seen:
            results[index] = EventResult(index, "duplicate")
        else:
            seen.add(event.idempotency_key)
            fresh.append((index, event))
    dialect = session.get_bind().dialect.name
    table = Event.__table__
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    # one cached statement, sent as multi-row INSERTs (SQLAlchemy's insertmanyvalues); RETURNING
    # names the rows this transaction inserted, so a key stored meanwhile is reported duplicate
    statement = insert.on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(
        table.c.idempotency_key, table.c.id)
    for part in _chunks(fresh, INSERT_CHUNK):
        values = [{"type": e.type, "member_id": e.member_id, "occurred_at": e.occurred_at, "received_at": now,
                   "idempotency_key": e.idempotency_key, "properties": e.properties, "source": source}
                  for _, e in part]
        stored = {key: event_id for key, event_id in session.connection().execute(statement, values)}
        for index, e in part:
            event_id = stored.get(e.idempotency_key)
            results[index] = EventResult(index, "accepted", event_id) if event_id else EventResult(index, "duplicate")
    return [results[i] for i, _ in events]


def ingest(session: Session, raws: Sequence[Any], now: datetime, source: str = "api",
           first_index: int = 0) -> list[EventResult]:
    """Validate and store a batch of decoded events; one result per event, in order."""
    results: dict[int, EventResult] = {}
    valid: list[tuple[int, EventIn]] = []
    for offset, raw in enumerate(raws):
        index = first_index + offset
        checked = validate(raw, now)
        if isinstance(checked, EventIn):
            valid.append((index, checked))
        else:
            results[index] = EventResult(index, "error", errors=checked)
    for result in store(session, valid, now, source):
        results[result.index] = result
    return [results[first_index + i] for i in range(len(raws))]


@dataclass
class ImportReport:
    path: str
    results: list[EventResult] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def errors(self) -> list[EventResult]:
        return [r for r in self.results if r.status == "error"]

    def summary(self) -> str:
        return (f"{self.path}: {len(self.results)} line(s): {self.count('accepted')} accepted, "
                f"{self.count('duplicate')} duplicate, {self.count('error')} rejected")


def _lines(lines: Iterable[str]) -> Iterator[tuple[int, Any | FieldError | None]]:
    """(line number, decoded JSON or the reason it is not JSON); blank lines are skipped."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except ValueError as exc:
            yield number, FieldError("", f"not valid JSON ({exc.msg} at column {exc.colno})")


def import_jsonl(session_factory: Any, path: str, now: datetime, batch: int = 1_000) -> ImportReport:
    """Stream a JSON Lines file into the events table, one transaction per batch of lines.

    Each result's index is its line number. Bad lines are reported and skipped; good ones are kept.
    """
    report = ImportReport(path)
    with open(path, encoding="utf-8") as handle:
        pending: list[tuple[int, Any]] = []

        def flush() -> None:
            with session_factory() as session:
                stored = store(session, [(n, e) for n, e in pending], now, "file")
                session.commit()
            report.results.extend(stored)
            pending.clear()

        for number, decoded in _lines(handle):
            if isinstance(decoded, FieldError):
                report.results.append(EventResult(number, "error", errors=[decoded]))
                continue
            checked = validate(decoded, now)
            if isinstance(checked, EventIn):
                pending.append((number, checked))
            else:
                report.results.append(EventResult(number, "error", errors=checked))
            if len(pending) >= batch:
                flush()
        if pending:
            flush()
    report.results.sort(key=lambda r: r.index)
    return report


def property_filter(match: dict[str, Any], properties: Any = None) -> ColumnElement[bool]:
    """SQL for "every listed property equals its value" (a list means one of its values).

    Typed extraction, so 10 matches 10 and 10.0, True matches JSON true, on SQLite and PostgreSQL.
    """
    column = Event.properties if properties is None else properties
    clauses: list[ColumnElement[bool]] = []
    for name, wanted in match.items():
        if not PROPERTY_NAME.fullmatch(name):
            raise ValueError(f"event filter property {name!r} must be a plain identifier")
        values = list(wanted) if isinstance(wanted, (list, tuple, set, frozenset)) else [wanted]
        if not values or any(v is None for v in values):
            raise ValueError(f"event filter on {name!r} needs one or more non-null values")
        kinds = {bool if isinstance(v, bool) else float if isinstance(v, (int, float)) else type(v) for v in values}
        if len(kinds) != 1 or not kinds <= {bool, float, str}:
            raise ValueError(f"event filter on {name!r}: values must all be booleans, numbers or strings")
        kind = kinds.pop()
        item = column[name]
        typed = item.as_boolean() if kind is bool else item.as_float() if kind is float else item.as_string()
        clauses.append(typed.in_(values) if len(values) > 1 else typed == values[0])
    return and_(true(), *clauses)


def newest_event_id(session: Session) -> int:
    """The largest event id (0 when there is none): one index seek, the runtime's wake probe."""
    return int(session.scalar(select(func.max(Event.id))) or 0)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# in-process wake-ups: a runtime in the same process as the events endpoint reacts at once
_log = logging.getLogger("loyalflow.events")
_wake_listeners: list[Callable[[], None]] = []


def add_wake_listener(listener: Callable[[], None]) -> Callable[[], None]:
    """Call `listener` (cheap, non-blocking) after events are stored: the embedded scheduler, when
    it runs in the same process as `loyalflow serve`, runs a pass at once instead of waiting.
    Returns a function that removes it."""
    _wake_listeners.append(listener)
    return lambda: _wake_listeners.remove(listener) if listener in _wake_listeners else None


def notify_stored() -> None:
    """Tell every listener that events were stored (called after the commit)."""
    for listener in list(_wake_listeners):
        try:
            listener()
        except Exception:  # noqa: BLE001 - a failing listener must not fail the request: the probe catches up
            _log.exception("an event wake listener failed")
