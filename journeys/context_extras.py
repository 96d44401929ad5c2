"""Journey-specific template variables, computed per chunk with a few set-based queries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from audiences.models import (
    Member,
    PointsEntry,
    PointsKind,
    ProgramUpdate,
    Tier,
    TierChange,
)
from audiences.settings import program_settings
from templates.locales import DEFAULT_LOCALE, fallback_chain

Contexts = list[dict[str, Any]]
F = TypeVar("F", bound=Callable[..., Contexts])


def provides(*names: str) -> Callable[[F], F]:
    """Declare the template variables an enricher adds, so `loyalflow check` can verify templates."""
    def mark(fn: F) -> F:
        fn.provides = names  # type: ignore[attr-defined]
        return fn
    return mark


def localized_text(entry: Any, locale: str | None, default_locale: str = DEFAULT_LOCALE) -> str:
    """One benefit in the member's language: a `{"en": ..., "fr": ...}` entry gives the nearest of the
    member's fallback chain (fr-CA, fr, then the default locale); a plain string is the same in every
    language."""
    if not isinstance(entry, dict):
        return str(entry)
    for candidate in fallback_chain(locale, default_locale):
        if entry.get(candidate):
            return str(entry[candidate])
    return str(next(iter(entry.values()), ""))


@provides("benefits")
def tier_benefits(session: Session, now: datetime, contexts: Contexts) -> Contexts:
    """The tier's benefits in each member's language (Tier.benefits entries may be per-locale dicts)."""
    codes = {c.get("tier_code") for c in contexts}
    benefits = dict(session.execute(select(Tier.code, Tier.benefits).where(Tier.code.in_(codes))).all())
    default_locale = program_settings().default_locale
    for c in contexts:
        c["benefits"] = [localized_text(b, c.get("locale"), default_locale)
                         for b in benefits.get(c.get("tier_code")) or []]
    return contexts


OFFER_BY_MONETARY_SCORE = {5: 25, 4: 20, 3: 15}


@provides("offer_percent", "offer_code")
def win_back_offer(session: Session, now: datetime, contexts: Contexts) -> Contexts:
    """A bigger offer for members who were worth more (monetary quintile)."""
    for c in contexts:
        percent = OFFER_BY_MONETARY_SCORE.get(int(c.get("m_score") or 0), 10)
        c["offer_percent"] = percent
        c["offer_code"] = f"COMEBACK{percent}"
    return contexts


def week_figures(session: Session, now: datetime) -> dict[str, Any]:
    start = now - timedelta(days=7)
    new, old = aliased(Tier), aliased(Tier)
    enrollments = session.scalar(select(func.count()).where(Member.enrolled_at > start, Member.enrolled_at <= now))
    redemptions = session.scalar(select(func.count()).where(
        PointsEntry.kind == PointsKind.redeem, PointsEntry.occurred_at > start, PointsEntry.occurred_at <= now))
    tier_ups = session.scalar(
        select(func.count()).select_from(TierChange).join(new, new.id == TierChange.to_tier_id)
        .join(old, old.id == TierChange.from_tier_id)
        .where(TierChange.changed_at > start, TierChange.changed_at <= now, new.rank > old.rank))
    return {"week_start": start.date(), "enrollments": int(enrollments or 0),
            "redemptions": int(redemptions or 0), "tier_ups": int(tier_ups or 0)}


@provides("figures", "updates")
def staff_bulletin_content(session: Session, now: datetime, contexts: Contexts) -> Contexts:
    figures = week_figures(session, now)
    updates = session.execute(
        select(ProgramUpdate).where(ProgramUpdate.published_at > now - timedelta(days=7),
                                    ProgramUpdate.published_at <= now).order_by(ProgramUpdate.published_at)
    ).scalars().all()
    for c in contexts:
        role, store = str(c.get("role") or ""), c.get("store_id")
        c["figures"] = dict(figures)
        c["updates"] = [
            {"title": u.title, "body": u.body, "published_at": u.published_at}
            for u in updates
            if (u.roles is None or role in u.roles.split(",")) and (u.store_id is None or u.store_id == store)
        ]
    return contexts
