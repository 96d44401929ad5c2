"""Surveys as journey steps: signed survey and "I've read it" links in the render context, and the
figures a report needs (NPS, response rates, bulletin read rates per store).

A survey is an ordinary send step whose key is declared to the journey's enricher:

    enrich=compose(tier_benefits, survey_links("tier_up", surveys={"nps": NPS})),
    steps=[..., send(email("tier_up/email_nps"), sms("tier_up/sms_nps"), key="nps"), ...]

Its templates then have `survey.scores` (one link per score: one tap answers), `survey.url` (the
scale page, for push) and `survey.min`/`survey.max`. Each survey message is recorded in
`survey_invites` with its channel (response rates; an SMS one is answered by a reply "0"-"10").
Steps named in `reads` get `read_url`.
Non-survey steps get `survey` and `read_url` as None. The links name the message by its ledger id
(`ledger_id`, set by delivery) and are signed by channels/surveys.py.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from audiences.models import Staff, Store
from channels.errors import ChannelSettingsError
from channels.settings import ChannelSettings, DeliveryMode, channel_settings
from channels.survey_models import BulletinRead, SurveyAnswer
from channels.surveys import (
    NPS_SCALE,
    PULSE_SCALE,
    READ,
    SURVEY,
    LinkClaim,
    link_secret,
    make_token,
    record_answer,
    record_invite,
    record_read,
)
from journeys.context_extras import Contexts, provides
from journeys.models import Send as LedgerRow
from journeys.models import SendStatus

NPS = NPS_SCALE
PULSE = PULSE_SCALE
Scale = tuple[int, int]
Enricher = Callable[[Session, datetime, Contexts], Contexts]

SURVEY_STEPS: dict[tuple[str, str], Scale] = {}
"""(journey, step key) -> scale of every survey step declared by a loaded journey (response rates)."""
READ_STEPS: set[tuple[str, str]] = set()


@lru_cache(maxsize=1)
def _process_secret() -> str:
    return secrets.token_hex(32)


def signing_secret(settings: ChannelSettings) -> str:
    """LOYALFLOW_LINK_SECRET (else the unsubscribe secret); the outbox, made to be looked at, signs
    with a secret of this process when none is set (as its unsubscribe links do)."""
    try:
        return link_secret(settings)
    except ChannelSettingsError:
        if settings.delivery_mode is not DeliveryMode.outbox:
            raise
        return _process_secret()


def survey_links(journey: str, surveys: dict[str, Scale] | None = None, reads: Iterable[str] = (),
                 settings: Callable[[], ChannelSettings] = channel_settings) -> Enricher:
    """An enricher giving survey steps `survey` and read steps `read_url` (see the module docstring)."""
    surveys = dict(surveys or {})
    reads = frozenset(reads)
    for step, (lo, hi) in surveys.items():
        if not (0 <= lo < hi <= 10):
            raise ValueError(f"journey {journey!r}: survey step {step!r} has scale {lo}-{hi}; it must lie within 0-10")
        SURVEY_STEPS[(journey, step)] = (lo, hi)
    READ_STEPS.update((journey, step) for step in reads)

    @provides("survey", "read_url")
    def enrich(session: Session, now: datetime, contexts: Contexts) -> Contexts:
        ids = [c["ledger_id"] for c in contexts if c.get("ledger_id") is not None]
        rows = {r.id: r for r in session.execute(
            select(LedgerRow.id, LedgerRow.journey, LedgerRow.step_key, LedgerRow.channel, LedgerRow.recipient_kind,
                   LedgerRow.recipient_id).where(LedgerRow.id.in_(ids))
        )} if ids else {}
        config = settings()
        secret = signing_secret(config) if any(
            (r.step_key in surveys or r.step_key in reads) for r in rows.values()) else ""
        base = config.public_base_url.rstrip("/")
        for c in contexts:
            c.setdefault("survey", None)
            c.setdefault("read_url", None)
            row = rows.get(c.get("ledger_id"))
            if row is None:
                continue
            if row.step_key in surveys:
                lo, hi = surveys[row.step_key]
                claim = LinkClaim(SURVEY, row.id, row.recipient_kind, row.recipient_id, row.journey, row.step_key,
                                  lo, hi)
                url = f"{base}/survey/{make_token(secret, claim, now)}"
                c["survey"] = {"url": url, "min": lo, "max": hi,
                               "scores": [{"score": n, "url": f"{url}/{n}"} for n in range(lo, hi + 1)]}
                record_invite(session, claim, now, row.channel or "")
            if row.step_key in reads and row.recipient_kind == "staff":
                claim = LinkClaim(READ, row.id, row.recipient_kind, row.recipient_id, row.journey, row.step_key)
                c["read_url"] = f"{base}/read/{make_token(secret, claim, now)}"
        return contexts

    return enrich


def compose(*enrichers: Enricher) -> Enricher:
    """Several enrichers as one, run in order; `loyalflow check` sees everything they provide."""

    def enrich(session: Session, now: datetime, contexts: Contexts) -> Contexts:
        for one in enrichers:
            contexts = one(session, now, contexts)
        return contexts

    enrich.provides = tuple(n for one in enrichers for n in getattr(one, "provides", ()))  # type: ignore[attr-defined]
    return enrich


# --- figures for the report ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreReadRate:
    store_id: int | None
    """None: staff without a store (head office)."""
    store_name: str
    sent: int
    read: int

    @property
    def rate(self) -> float | None:
        return self.read / self.sent if self.sent else None


def read_rates(session: Session, since: datetime, until: datetime | None = None,
               journey: str = "staff_bulletin") -> list[StoreReadRate]:
    """Per store (the staff member's store), bulletins sent in [since, until) and how many were read
    (at any time since): one row per store that was sent any, ordered by store name."""
    read = select(BulletinRead.ledger_id).where(BulletinRead.ledger_id == LedgerRow.id).exists()
    when = [LedgerRow.sent_at >= since] + ([LedgerRow.sent_at < until] if until is not None else [])
    rows = session.execute(
        select(Staff.store_id, Store.name, func.count(LedgerRow.id), func.sum(case((read, 1), else_=0)))
        .select_from(LedgerRow)
        .join(Staff, and_(LedgerRow.recipient_kind == "staff", Staff.id == LedgerRow.recipient_id))
        .outerjoin(Store, Store.id == Staff.store_id)
        .where(LedgerRow.journey == journey, LedgerRow.status == SendStatus.sent, *when)
        .group_by(Staff.store_id, Store.name)
    ).all()
    out = [StoreReadRate(sid, name or "Head office", int(sent), int(done or 0)) for sid, name, sent, done in rows]
    return sorted(out, key=lambda r: (r.store_id is None, r.store_name))


@dataclass(frozen=True, slots=True)
class NpsRow:
    journey: str
    step: str
    sent: int
    """Survey messages sent in the window (ledger `sent`)."""
    responses: int
    promoters: int
    passives: int
    detractors: int

    @property
    def nps(self) -> float | None:
        """% promoters (9-10) minus % detractors (0-6), -100..100."""
        return 100.0 * (self.promoters - self.detractors) / self.responses if self.responses else None

    @property
    def response_rate(self) -> float | None:
        return self.responses / self.sent if self.sent else None


def nps_summary(session: Session, since: datetime, until: datetime | None = None) -> list[NpsRow]:
    """Per NPS survey step (scale 0-10): messages sent in [since, until), the answers to them, and
    promoters/passives/detractors by each answer's latest score."""
    when = [LedgerRow.sent_at >= since] + ([LedgerRow.sent_at < until] if until is not None else [])
    steps = [key for key, scale in SURVEY_STEPS.items() if scale == NPS]
    answered = (select(SurveyAnswer.journey, SurveyAnswer.step, func.count(SurveyAnswer.id),
                       func.sum(case((SurveyAnswer.score >= 9, 1), else_=0)),
                       func.sum(case((SurveyAnswer.score <= 6, 1), else_=0)))
                .join(LedgerRow, LedgerRow.id == SurveyAnswer.ledger_id)
                .where(SurveyAnswer.scale_min == NPS[0], SurveyAnswer.scale_max == NPS[1], *when)
                .group_by(SurveyAnswer.journey, SurveyAnswer.step))
    answers = {(j, s): (int(n), int(p or 0), int(d or 0)) for j, s, n, p, d in session.execute(answered)}
    keys = set(answers) | set(steps)
    sent: dict[tuple[str, str], int] = {}
    if keys:
        pairs = or_(*(and_(LedgerRow.journey == j, LedgerRow.step_key == s) for j, s in keys))
        sent = {(j, s): int(n) for j, s, n in session.execute(
            select(LedgerRow.journey, LedgerRow.step_key, func.count())
            .where(pairs, LedgerRow.status == SendStatus.sent, *when).group_by(LedgerRow.journey, LedgerRow.step_key))}
    out = []
    for key in sorted(keys):
        n, p, d = answers.get(key, (0, 0, 0))
        out.append(NpsRow(key[0], key[1], sent.get(key, 0), n, p, n - p - d, d))
    return out


def scale_of(journey: str, step: str) -> Scale | None:
    return SURVEY_STEPS.get((journey, step))


__all__ = ["NPS", "PULSE", "NpsRow", "StoreReadRate", "compose", "demo_feedback", "nps_summary", "read_rates",
           "scale_of", "survey_links"]


# --- synthetic feedback for the demo -------------------------------------------------------------


def _share(ledger_id: int, salt: str) -> float:
    """A fixed number in [0, 1) per message: the demo's answers are the same on every run."""
    digest = hashlib.sha256(f"{salt}:{ledger_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _demo_score(ledger_id: int, lo: int, hi: int) -> int:
    pick = _share(ledger_id, "score")
    if (lo, hi) == NPS:  # roughly half promoters, a quarter passives, a quarter detractors
        return 9 + int(pick * 4) % 2 if pick < 0.5 else (7 + int(pick * 8) % 2 if pick < 0.75 else int(pick * 28) % 7)
    return lo + int(pick * (hi - lo + 1))


def demo_feedback(session: Session, now: datetime, *, answer_share: float = 0.35,
                  read_share: float = 0.6) -> tuple[int, int]:
    """Answer a fixed share of the survey messages and read a share of the bulletins sent up to `now`,
    each a few hours after it was sent (never after `now`), as members and staff would: for the demo
    and its report. Deterministic per message; returns (answers, reads) recorded by this call."""
    # the definitions declare their survey and read steps when they load
    from journeys.registry import journeys

    journeys()
    if not SURVEY_STEPS and not READ_STEPS:
        return 0, 0
    answered = select(SurveyAnswer.id).where(SurveyAnswer.ledger_id == LedgerRow.id).exists()
    read = select(BulletinRead.id).where(BulletinRead.ledger_id == LedgerRow.id).exists()
    steps = [(j, s) for j, s in SURVEY_STEPS] + [(j, s) for j, s in READ_STEPS]
    rows = session.execute(
        select(LedgerRow.id, LedgerRow.journey, LedgerRow.step_key, LedgerRow.recipient_kind,
               LedgerRow.recipient_id, LedgerRow.channel, LedgerRow.sent_at)
        .where(LedgerRow.status == SendStatus.sent, LedgerRow.sent_at <= now, ~(answered & read),
               or_(*(and_(LedgerRow.journey == j, LedgerRow.step_key == s) for j, s in steps)))
    ).all()
    answers = reads = 0
    for row in rows:
        key = (row.journey, row.step_key)
        at = row.sent_at + timedelta(hours=1 + int(_share(row.id, "delay") * 47))
        if at > now:
            continue
        if key in SURVEY_STEPS and _share(row.id, "answer") < answer_share:
            lo, hi = SURVEY_STEPS[key]
            claim = LinkClaim(SURVEY, row.id, row.recipient_kind, row.recipient_id, row.journey, row.step_key, lo, hi)
            exists_already = session.scalar(select(SurveyAnswer.id).where(SurveyAnswer.ledger_id == row.id))
            if exists_already is None:
                record_answer(session, claim, _demo_score(row.id, lo, hi), at,
                              channel="sms" if row.channel == "sms" else "web")
                answers += 1
        if key in READ_STEPS and row.recipient_kind == "staff" and _share(row.id, "read") < read_share:
            claim = LinkClaim(READ, row.id, row.recipient_kind, row.recipient_id, row.journey, row.step_key)
            reads += record_read(session, claim, at)
    return answers, reads
