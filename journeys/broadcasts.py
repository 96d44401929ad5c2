"""Broadcasts: a newsletter, a program change, a store opening, sent once to an audience.

A broadcast is a row (journeys/broadcast_models.py). Sending it enrolls its audience into a
one-step journey named `broadcast_<id>`, in ONE INSERT ... SELECT whose due instants are spread
evenly over the throttle window; from there a pass advances it like any journey, so it goes
through the same gate (consent, suppression, quiet hours, frequency cap, priority) and the same
ledger (unique (enrollment, step): each member once, whatever the number of passes or workers).

The audience is evaluated when `send` runs (enrollment is entry); consent and quiet hours are
checked at each member's due instant (the gate), so a member who opts out in between gets nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import (
    String,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from audiences.errors import LoyalflowError
from audiences.queries import get_audience
from journeys.broadcast_models import Broadcast, BroadcastStatus
from journeys.dsl import Journey, Message, send
from journeys.enroll import _json_object
from journeys.holdout import bucket_sql, threshold
from journeys.ledger import OPEN
from journeys.models import Enrollment, EnrollmentStatus, SendStatus
from journeys.models import Send as LedgerRow
from templates.vocabulary import PURPOSES

log = logging.getLogger("loyalflow.broadcasts")

PREFIX = "broadcast_"
STEP_KEY = "broadcast"
CANCELLED = "cancelled"
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_OVER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_WINDOW = timedelta(days=7)


class BroadcastError(LoyalflowError):
    """A broadcast that cannot be created, sent or cancelled as asked; nothing was changed."""


def journey_name(broadcast_id: int) -> str:
    return f"{PREFIX}{broadcast_id}"


def parse_over(raw: str | None) -> timedelta:
    """`--over 2h` -> 2 hours (s, m, h, d); None -> no throttle."""
    if raw is None or raw == "":
        return timedelta(0)
    match = _OVER.match(raw)
    if not match:
        raise BroadcastError(f"--over {raw!r} is not a duration like 90m, 2h or 1d")
    window = timedelta(seconds=float(match[1]) * _UNITS[match[2]])
    if window > MAX_WINDOW:
        raise BroadcastError(f"--over {raw!r} is longer than {MAX_WINDOW.days} days")
    return window


# --- creating ------------------------------------------------------------------------------------------

def _check_templates(library: Any, templates: Sequence[str]) -> tuple[list[Message], str]:
    """The messages of a fallback chain, and the purpose their templates declare (they must agree).
    Each template must render with the common context only (broadcasts have no journey fields)."""
    from templates.errors import TemplateError
    from templates.samples import sample_context

    if not templates:
        raise BroadcastError("a broadcast needs at least one --template (e.g. broadcasts/newsletter)")
    messages: list[Message] = []
    purposes: set[str] = set()
    for template in templates:
        folder, _, step = template.partition("/")
        if not step or not library.exists(folder, step):
            known = ", ".join(f"{j}/{s}" for j, s in library.templates() if j == "broadcasts")
            raise BroadcastError(f"unknown template {template!r}; broadcast templates: {known or 'none'}")
        channel = str(getattr(library.channel_of(folder, step), "value", library.channel_of(folder, step)))
        if channel in {m.channel for m in messages}:
            raise BroadcastError(f"two templates for channel {channel}: a fallback chain has one per channel")
        for locale in library.locales(folder, step):
            try:
                library.render(folder, step, locale, sample_context("broadcasts", locale))
            except TemplateError as exc:
                raise BroadcastError(f"template {template!r} ({locale}) cannot be used in a broadcast: {exc} "
                                     "(only first_name, locale, time_zone, tier_code, program and links exist)") from None
        purposes.add(library.purpose_of(folder, step))
        messages.append(Message(channel, template))
    if len(purposes) != 1:
        raise BroadcastError(f"templates {', '.join(templates)} declare different purposes: {sorted(purposes)}")
    return messages, purposes.pop()


def create(session: Session, name: str, *, templates: Sequence[str], audience: str = "members",
           params: Mapping[str, str] | None = None, purpose: str | None = None, priority: int = 40,
           holdout_percent: int = 0, now: datetime, library: Any = None) -> Broadcast:
    """A draft broadcast, checked now (name, audience and parameters, templates, purpose); committed."""
    if library is None:
        from templates import TemplateLibrary

        library = TemplateLibrary.load(eager=False)
    if not _NAME.match(name):
        raise BroadcastError(f"broadcast name {name!r}: use lower-case letters, digits, - and _ (start with a letter)")
    if session.scalar(select(Broadcast.id).where(Broadcast.name == name)) is not None:
        raise BroadcastError(f"a broadcast named {name!r} exists; choose another name")
    found = get_audience(audience)
    if found.recipient != "member":
        raise BroadcastError(f"audience {audience!r} is of {found.recipient}; broadcasts go to members")
    raw = {k: str(v) for k, v in (params or {}).items()}
    found.parse_params(raw)  # a clear error for an unknown or malformed parameter
    messages, declared = _check_templates(library, templates)
    purpose = purpose or declared
    if purpose not in PURPOSES or purpose == "staff":
        raise BroadcastError(f"purpose {purpose!r}: a broadcast is marketing or transactional")
    if purpose != declared:
        raise BroadcastError(f"purpose {purpose!r} differs from the templates' declared purpose {declared!r}")
    if not 0 <= holdout_percent <= 50:
        raise BroadcastError(f"--holdout {holdout_percent}: use 0 to 50 percent")
    row = Broadcast(name=name, audience=audience, audience_params=raw, templates=",".join(m.template for m in messages),
                    purpose=purpose, priority=priority, holdout_percent=holdout_percent,
                    status=BroadcastStatus.draft, throttle_seconds=0, enrolled=0, created_at=now, updated_at=now)
    session.add(row)
    session.commit()
    return row


def get(session: Session, name: str) -> Broadcast:
    row = session.scalar(select(Broadcast).where(Broadcast.name == name))
    if row is None:
        known = ", ".join(session.scalars(select(Broadcast.name).order_by(Broadcast.id)))
        raise BroadcastError(f"unknown broadcast {name!r}; known: {known or 'none'}")
    return row


# --- the journey a broadcast runs as --------------------------------------------------------------------

_journeys: dict[tuple[Any, ...], Journey] = {}


def journey_of(row: Broadcast) -> Journey:
    """The one-step journey of a broadcast (cached: the same object every pass, so its program compiles once)."""
    key = (row.id, row.name, row.templates, row.purpose, row.priority, row.holdout_percent, row.audience)
    if key not in _journeys:
        messages = [Message(_channel_of(t), t) for t in row.templates.split(",")]
        _journeys[key] = Journey(
            name=journey_name(row.id), description=f"broadcast {row.name}", version=1, purpose=row.purpose,
            audience=row.audience, audience_params={}, schedule=None, priority=row.priority,
            holdout_percent=float(row.holdout_percent), steps=[send(*messages, key=STEP_KEY)])
    return _journeys[key]


def _channel_of(template: str) -> str:
    """The template's channel; a template removed since `create` cannot stop a pass: its sends then fail
    `render_error` (recorded per member, visible in the report) instead."""
    from templates import TemplateLibrary
    from templates.errors import TemplateError

    folder, _, step = template.partition("/")
    try:
        channel = _library(TemplateLibrary).channel_of(folder, step)
    except (TemplateError, KeyError, LookupError):
        log.error("broadcast template %s is gone from the library; its sends will fail render_error", template)
        return "email"
    return str(getattr(channel, "value", channel))


_library_cache: list[Any] = []


def _library(cls: Any) -> Any:
    if not _library_cache:
        _library_cache.append(cls.load(eager=False))
    return _library_cache[0]


def journeys_for(session_factory: Any, due: Mapping[str, int]) -> dict[str, Journey]:
    """The journeys of broadcasts with due enrollments (no query when none is due: an empty pass stays one query)."""
    ids = [int(n[len(PREFIX):]) for n in due if n.startswith(PREFIX) and n[len(PREFIX):].isdigit()]
    if not ids:
        return {}
    with session_factory() as session:
        rows = session.scalars(select(Broadcast).where(Broadcast.id.in_(ids))).all()
        return {journey_name(r.id): journey_of(r) for r in rows}


_factories: dict[str, Any] = {}


def journey_named(name: str, session_factory: Any = None) -> Journey | None:
    """The journey `broadcast_<id>` (for a worker given only a journey name); None when no such broadcast."""
    suffix = name[len(PREFIX):]
    if not name.startswith(PREFIX) or not suffix.isdigit():
        return None
    if session_factory is None:
        from audiences.db import make_engine
        from audiences.db import session_factory as make_factory
        from audiences.settings import database_settings

        url = database_settings().database_url
        if url not in _factories:  # one engine per database for the process, not one per lookup
            _factories[url] = make_factory(make_engine(url))
        session_factory = _factories[url]
    with session_factory() as session:
        row = session.get(Broadcast, int(suffix))
        return journey_of(row) if row is not None else None


# --- sending: enrollment with due instants over the window ---------------------------------------------

def _spread(dialect: str, start: datetime, rank: Any, total: Any, window: timedelta) -> Any:
    """start + window * (rank - 1) / total, in SQL (milliseconds): the first at start, the last before the end."""
    window_ms = int(window.total_seconds() * 1000)
    offset_ms = ((rank - 1) * window_ms) / total  # integer division on both databases
    if dialect == "sqlite":  # stored as naive UTC text, as UTCDateTime writes it
        naive = start.astimezone(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")
        modifier = literal("+").concat(cast(offset_ms / 1000.0, String)).concat(literal(" seconds"))
        return func.strftime("%Y-%m-%d %H:%M:%f", literal(naive), modifier)
    return literal(start, Enrollment.due_at.type) + offset_ms * literal_column("interval '1 millisecond'")


def _enroll(session: Session, row: Broadcast, journey: Journey, now: datetime, start: datetime,
            window: timedelta) -> int:
    audience = get_audience(row.audience)
    params = dataclasses.asdict(audience.parse_params(row.audience_params or {}))
    rows = audience.query(now, **params).select().order_by(None).subquery("audience_rows")
    dialect = session.get_bind().dialect.name
    fields = [c.name for c in rows.c if c.name != "recipient_id"]
    ranked = select(rows, func.row_number().over(order_by=rows.c.recipient_id).label("rank_"),
                    func.count().over().label("total_")).subquery("ranked")
    holdout = bucket_sql(ranked.c.recipient_id, journey.name, "holdout") < threshold(journey.holdout_percent)
    due = (_spread(dialect, start, ranked.c.rank_, ranked.c.total_, window) if window > timedelta(0)
           else literal(start, Enrollment.due_at.type))
    source = select(
        literal(journey.name), literal(journey.version), literal("member"), ranked.c.recipient_id,
        literal("once"), literal(now, Enrollment.enrolled_at.type),
        case((holdout, literal(EnrollmentStatus.held_out.value)), else_=literal(EnrollmentStatus.active.value)),
        literal(0), case((holdout, None), else_=due),
        _json_object(dialect, [(name, ranked.c[name]) for name in fields]),
        literal(now, Enrollment.updated_at.type)).where(ranked.c.total_ > 0)  # a WHERE: SQLite reads ON CONFLICT as a join otherwise
    columns = ["journey", "journey_version", "recipient_kind", "recipient_id", "occurrence_key", "enrolled_at",
               "status", "step_index", "due_at", "context", "updated_at"]
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Enrollment)
    session.execute(insert.from_select(columns, source).on_conflict_do_nothing(
        index_elements=["journey", "recipient_kind", "recipient_id", "occurrence_key"]))
    return int(session.scalar(select(func.count()).where(Enrollment.journey == journey.name)) or 0)


def schedule(session: Session, name: str, now: datetime, *, at: datetime | None = None,
             over: timedelta = timedelta(0)) -> Broadcast:
    """Send a draft: enroll its audience now, due from `at` (default now) spread over `over`; committed.
    A broadcast is sent once: a second `send` is refused (the status guard and the enrollment key)."""
    row = get(session, name)
    if row.status is not BroadcastStatus.draft:
        raise BroadcastError(f"broadcast {name!r} is {row.status.value}; only a draft can be sent")
    start = at or now
    if start < now - timedelta(minutes=5):
        raise BroadcastError(f"--at {start.isoformat()} is in the past")
    claimed = session.execute(update(Broadcast).where(Broadcast.id == row.id, Broadcast.status == BroadcastStatus.draft)
                              .values(status=BroadcastStatus.scheduled, scheduled_at=start,
                                      throttle_seconds=int(over.total_seconds()), updated_at=now),
                              execution_options={"synchronize_session": False})
    if claimed.rowcount != 1:
        session.rollback()
        raise BroadcastError(f"broadcast {name!r} is being sent by another command")
    enrolled = _enroll(session, row, journey_of(row), now, start, over)
    session.execute(update(Broadcast).where(Broadcast.id == row.id).values(
        enrolled=enrolled, status=BroadcastStatus.scheduled if start > now else BroadcastStatus.sending),
        execution_options={"synchronize_session": False})
    session.commit()
    session.refresh(row)
    return row


# --- cancelling -----------------------------------------------------------------------------------------

def cancel(session: Session, name: str, now: datetime) -> int:
    """Stop a broadcast: enrollments not yet handed over exit with reason `cancelled` (their open ledger
    rows are skipped with it); a chunk a worker holds right now finishes. Returns how many were stopped."""
    row = get(session, name)
    if row.status in (BroadcastStatus.sent, BroadcastStatus.cancelled):
        raise BroadcastError(f"broadcast {name!r} is already {row.status.value}")
    journey = journey_name(row.id)
    free = or_(Enrollment.lease_until.is_(None), Enrollment.lease_until < now)
    stopped = session.execute(
        update(Enrollment).where(Enrollment.journey == journey, Enrollment.status == EnrollmentStatus.active, free)
        .values(status=EnrollmentStatus.exited, exit_reason=CANCELLED, due_at=None, updated_at=now),
        execution_options={"synchronize_session": False}).rowcount
    session.execute(update(LedgerRow).where(LedgerRow.journey == journey, LedgerRow.status.in_(OPEN))
                    .values(status=SendStatus.skipped, reason=CANCELLED, updated_at=now),
                    execution_options={"synchronize_session": False})
    session.execute(update(Broadcast).where(Broadcast.id == row.id).values(
        status=BroadcastStatus.cancelled, cancelled_at=now, updated_at=now),
        execution_options={"synchronize_session": False})
    session.commit()
    return int(stopped or 0)


# --- progress -------------------------------------------------------------------------------------------

@dataclass
class Progress:
    name: str
    status: str
    audience: str
    templates: str
    scheduled_at: datetime | None
    throttle_seconds: int
    enrolled: int = 0
    held_out: int = 0
    waiting: int = 0
    """Enrolled, not yet due or not yet run."""
    sent: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    cancelled: int = 0


def progress(session: Session, now: datetime, *, persist: bool = True) -> list[Progress]:
    """Every broadcast with its figures from the enrollments and the ledger; statuses brought up to date
    (written back unless `persist` is False: a report only reads)."""
    rows = session.scalars(select(Broadcast).order_by(Broadcast.id)).all()
    out = {r.id: Progress(r.name, r.status.value, r.audience, r.templates, r.scheduled_at, r.throttle_seconds)
           for r in rows}
    by_journey = {journey_name(r.id): r.id for r in rows}
    if not rows:
        return []
    names = list(by_journey)
    for journey, status, reason, n in session.execute(
            select(Enrollment.journey, Enrollment.status, Enrollment.exit_reason, func.count())
            .where(Enrollment.journey.in_(names)).group_by(Enrollment.journey, Enrollment.status, Enrollment.exit_reason)):
        p = out[by_journey[journey]]
        p.enrolled += n
        if status == EnrollmentStatus.held_out:
            p.held_out += n
        elif status == EnrollmentStatus.active:
            p.waiting += n
        elif reason == CANCELLED:
            p.cancelled += n
    for journey, status, reason, n in session.execute(
            select(LedgerRow.journey, LedgerRow.status, LedgerRow.reason, func.count())
            .where(LedgerRow.journey.in_(names), LedgerRow.status.in_([SendStatus.sent, SendStatus.skipped,
                                                                       SendStatus.failed]))
            .group_by(LedgerRow.journey, LedgerRow.status, LedgerRow.reason)):
        p = out[by_journey[journey]]
        if status == SendStatus.sent:
            p.sent += n
        elif status == SendStatus.skipped:
            p.skipped[reason or "unknown"] = p.skipped.get(reason or "unknown", 0) + n
        else:
            p.failed[reason or "unknown"] = p.failed.get(reason or "unknown", 0) + n
    changed = False
    for r in rows:
        p = out[r.id]
        if r.status in (BroadcastStatus.scheduled, BroadcastStatus.sending):
            new = (BroadcastStatus.sent if p.waiting == 0 else
                   BroadcastStatus.scheduled if r.scheduled_at and r.scheduled_at > now else BroadcastStatus.sending)
            if new is not r.status and not persist:
                p.status = new.value
            elif new is not r.status:
                session.execute(update(Broadcast).where(Broadcast.id == r.id, Broadcast.status == r.status)
                                .values(status=new, updated_at=now), execution_options={"synchronize_session": False})
                p.status, changed = new.value, True
    if changed:
        session.commit()
    return list(out.values())


# --- preview --------------------------------------------------------------------------------------------

def preview(session: Session, name: str, library: Any, *, member_id: int | None = None,
            locale: str | None = None) -> list[tuple[str, Any]]:
    """Each template of the broadcast rendered for one member (their name, locale, zone) or the sample."""
    from audiences.models import Member, Tier
    from templates.samples import sample_context

    row = get(session, name)
    context = sample_context("broadcasts", locale or "en")
    if member_id is not None:
        found = session.execute(select(Member.first_name, Member.locale, Member.time_zone, Tier.code)
                                .outerjoin(Tier, Tier.id == Member.tier_id).where(Member.id == member_id)).first()
        if found is None:
            raise BroadcastError(f"no member with id {member_id}")
        context = sample_context("broadcasts", locale or found.locale, first_name=found.first_name)
        context.update({"recipient_id": member_id, "time_zone": found.time_zone, "tier_code": found.code})
    out = []
    for template in row.templates.split(","):
        folder, _, step = template.partition("/")
        out.append((template, library.render(folder, step, context["locale"], context)))
    return out


__all__ = ["Broadcast", "BroadcastError", "BroadcastStatus", "PREFIX", "Progress", "cancel", "create", "get",
           "journey_name", "journey_of", "journeys_for", "parse_over", "preview", "progress", "schedule"]
