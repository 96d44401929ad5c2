"""Consent events from a CSV file, streamed: a million rows in a few tens of megabytes.

The file is read row by row and written in batches (the recipients of each batch checked with one
query per kind, the events inserted with one executemany); nothing holds the whole file. Each bad
row is refused with its line number and the good ones kept: bytes that are not UTF-8, a NUL (which
PostgreSQL refuses in text), an id that is not plain ASCII digits (Python's int() reads `1_0`,
`٦` and `+7` as other members), a timestamp without an offset, in the future or before 1970, an
unknown recipient. A header that names a column twice refuses the whole file: which one to
believe cannot be guessed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from audiences.models import Member, Staff
from channels.errors import ConsentImportError
from channels.models import ConsentAction, ConsentEvent
from templates.vocabulary import Channel, Purpose, RecipientKind

REQUIRED_COLUMNS = ("recipient_id", "channel", "purpose", "action", "occurred_at")
ACTIONS = {"opt_in": ConsentAction.opt_in, "opt-in": ConsentAction.opt_in, "optin": ConsentAction.opt_in,
           "opt_out": ConsentAction.opt_out, "opt-out": ConsentAction.opt_out, "optout": ConsentAction.opt_out}
KINDS = {k.value: k for k in RecipientKind}
CHANNELS = {c.value: c for c in Channel}
PURPOSES = {p.value: p for p in Purpose}
MAX_ID = 2**31 - 1  # the ids' INTEGER columns
EARLIEST = datetime(1970, 1, 1)  # naive UTC, as rows are compared
BATCH = 5000
MAX_REPORTED = 10_000
"""Refused rows kept with their message; beyond that only counted (a wrong file can refuse millions)."""


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    message: str


@dataclass
class ImportReport:
    path: str
    imported: int = 0
    refused: int = 0
    errors: list[RowError] = field(default_factory=list)
    """The first MAX_REPORTED refused rows, by line."""

    def refuse(self, line: int, message: str) -> None:
        self.refused += 1
        if len(self.errors) < MAX_REPORTED:
            self.errors.append(RowError(line, message))

    def summary(self) -> str:
        more = f" ({self.refused - len(self.errors)} more not listed)" if self.refused > len(self.errors) else ""
        return f"{self.path}: {self.imported} consent events imported, {self.refused} rows refused{more}"


class _Columns:
    """Where each known column is in a row (-1: absent)."""

    def __init__(self, header: list[str], path: Path) -> None:
        names = [name.strip() for name in header]
        for name in names:
            if names.count(name) > 1:
                raise ConsentImportError(f"{path}:1: column {name!r} appears more than once in the header; "
                                         "keep one of them")
        missing = [c for c in REQUIRED_COLUMNS if c not in names]
        if missing:
            raise ConsentImportError(f"{path}:1: missing columns {', '.join(missing)} (have: {', '.join(names)})")
        self.width = len(names)
        at = {name: i for i, name in enumerate(names)}
        self.kind, self.source, self.evidence = (at.get(n, -1) for n in ("recipient_kind", "source", "evidence"))
        self.id, self.channel, self.purpose, self.action, self.occurred_at = (at[n] for n in REQUIRED_COLUMNS)


def _clean(row: list[str]) -> str | None:
    """Why the row's bytes cannot be stored, or None."""
    joined = "".join(row)
    if joined.isascii():
        return "a NUL character is not allowed" if "\x00" in joined else None
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError:
        return "bytes that are not UTF-8"
    return "a NUL character is not allowed" if "\x00" in joined else None


class _Driver:
    """Values as the database driver takes them, converted by the columns' own bind processors once
    per distinct enum value and once per timestamp: SQLAlchemy's per-row statement machinery would
    cost more than the database's own work on a million rows."""

    def __init__(self, session: Session) -> None:
        self.conn = session.connection()
        dialect = self.conn.dialect
        table = ConsentEvent.__table__

        def converted(column: str, value: Any) -> Any:
            process = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
            return process(value) if process else value

        self.kinds = {text: converted("recipient_kind", kind) for text, kind in KINDS.items()}
        self.channels = {text: converted("channel", channel) for text, channel in CHANNELS.items()}
        self.purposes = {text: converted("purpose", purpose) for text, purpose in PURPOSES.items()}
        self.actions = {text: converted("action", action) for text, action in ACTIONS.items()}
        self.models = {self.kinds["member"]: (RecipientKind.member, Member), self.kinds["staff"]: (RecipientKind.staff, Staff)}
        timestamp = table.c["occurred_at"].type.impl
        self.stamp = timestamp.dialect_impl(dialect).bind_processor(dialect) or (lambda value: value)
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self.sql = f"INSERT INTO {table.name} ({', '.join(COLUMNS)}) VALUES ({', '.join([mark] * len(COLUMNS))})"


COLUMNS = ("recipient_kind", "recipient_id", "channel", "purpose", "action", "source", "occurred_at", "evidence")
Row = tuple[Any, int, Any, Any, Any, str, Any, "str | None"]


def _parse(row: list[str], cols: _Columns, now: datetime, db: _Driver) -> Row:
    """The row as the INSERT's values, or ValueError naming the field."""
    kind_text = row[cols.kind].strip() if cols.kind >= 0 else ""
    kind = db.kinds.get(kind_text or "member")
    if kind is None:
        raise ValueError(f"recipient_kind {kind_text!r} is not member or staff")
    raw_id = row[cols.id].strip()
    if not (raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= 10) or not 1 <= int(raw_id) <= MAX_ID:
        raise ValueError(f"recipient_id {raw_id!r} is not an id (digits 0-9, 1..{MAX_ID})")
    channel = db.channels.get(row[cols.channel].strip().lower())
    if channel is None:
        raise ValueError(f"channel {row[cols.channel].strip()!r} is not email, sms or push")
    purpose = db.purposes.get(row[cols.purpose].strip().lower())
    if purpose is None:
        raise ValueError(f"purpose {row[cols.purpose].strip()!r} is not marketing, transactional or staff")
    action = db.actions.get(row[cols.action].strip().lower())
    if action is None:
        raise ValueError(f"action {row[cols.action].strip()!r} is not opt_in or opt_out")
    stamp = row[cols.occurred_at].strip()
    try:
        occurred_at = datetime.fromisoformat(stamp)  # Python 3.11 reads "Z" too
    except ValueError:
        raise ValueError(f"occurred_at {stamp!r} is not an ISO 8601 timestamp") from None
    offset = occurred_at.utcoffset()
    if offset is None:
        raise ValueError(f"occurred_at {stamp!r} has no UTC offset")
    try:
        utc = (occurred_at - offset).replace(tzinfo=None) if offset else occurred_at.replace(tzinfo=None)
    except OverflowError:
        raise ValueError(f"occurred_at {stamp!r} is out of range") from None
    if utc < EARLIEST:
        raise ValueError(f"occurred_at {stamp!r} is before 1970")
    if utc > now:  # the latest event wins: a future one would outrank every real opt-out until then
        raise ValueError(f"occurred_at {stamp!r} is in the future")
    source = row[cols.source].strip()[:64] if cols.source >= 0 else ""
    evidence = row[cols.evidence].strip() if cols.evidence >= 0 else ""
    return (kind, int(raw_id), channel, purpose, action, source or "csv_import", db.stamp(utc), evidence or None)


def _rows(reader: Any, report: ImportReport) -> Iterator[tuple[int, list[str]]]:
    """Each row with its line; a row the csv module cannot read is refused and reading goes on."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            report.refuse(reader.line_num, f"unreadable CSV row: {exc}")
            continue
        if row:  # blank lines are not rows
            yield reader.line_num, row


def _write(db: _Driver, batch: list[tuple[int, Row]], name: str, report: ImportReport) -> None:
    known: dict[Any, set[int]] = {}
    for kind, (_, model) in db.models.items():
        ids = {r[1] for _, r in batch if r[0] == kind}
        known[kind] = set(db.conn.scalars(select(model.id).where(model.id.in_(ids)))) if ids else set()
    events = []
    for line, row in batch:
        if row[1] not in known[row[0]]:
            report.refuse(line, f"no {db.models[row[0]][0].value} with id {row[1]}")
        elif row[7] is None:
            events.append((*row[:7], f"{name}:{line}"))
        else:
            events.append(row)
    if events:
        db.conn.exec_driver_sql(db.sql, events)
    report.imported += len(events)


def import_consent_csv(session: Session, path: str | Path, now: datetime | None = None, *, batch: int = BATCH) -> ImportReport:
    """Append the good rows as consent events; report the others by line number (header = line 1).
    Rows dated after `now` (default: the wall clock) are refused."""
    now = now or datetime.now(timezone.utc)
    naive_now = now.astimezone(timezone.utc).replace(tzinfo=None)
    path = Path(path)
    report = ImportReport(str(path))
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise ConsentImportError(f"cannot read consent file {path}: {exc.strerror}") from None
    # surrogateescape: an undecodable byte becomes a marker the row check finds, not an exception
    with io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise ConsentImportError(f"{path}:1: the file is empty (expected a header row)") from None
        except csv.Error as exc:
            raise ConsentImportError(f"{path}:1: unreadable header: {exc}") from None
        if _clean(header):
            raise ConsentImportError(f"{path}:1: the header has {_clean(header)}")
        cols = _Columns(header, path)
        db = _Driver(session)
        pending: list[tuple[int, Row]] = []
        for line, row in _rows(reader, report):
            problem = _clean(row)
            if problem is None and len(row) > cols.width:
                problem = f"{len(row)} fields where the header has {cols.width}"
            elif len(row) < cols.width:  # trailing optional columns left out: empty, as csv.DictReader has it
                row += [""] * (cols.width - len(row))
            if problem is not None:
                report.refuse(line, problem)
                continue
            try:
                pending.append((line, _parse(row, cols, naive_now, db)))
            except ValueError as exc:
                report.refuse(line, str(exc))
                continue
            if len(pending) >= batch:
                _write(db, pending, path.name, report)
                pending = []
        _write(db, pending, path.name, report)
    report.errors.sort(key=lambda e: e.line)
    return report
