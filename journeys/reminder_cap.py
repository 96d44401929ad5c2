"""A per-member cap for transactional reminders: at most N of one journey's messages in a rolling window.

Transactional messages are outside the marketing frequency cap (a reminder that points expire is
owed), but a member with many small batches would still hear about them every few days. The
points-expiring journey sends only while the member got fewer than N reminders of that journey in
the last `days` days; a reminder held back this way is not made up later (a later step of the
same enrollment may still go once the window has room). Counted: rows of the send ledger that went
or are on their way (reserved, deferred by quiet hours, sending, unknown, sent), so a deferred
reminder holds its place. Reminders of one member falling due in the same pass count the member's
other enrollments of the journey due in that pass with a lower id as already sent: the cap holds
within a pass too, erring on the side of fewer (an enrollment due there for a wait or an exit check
counts as well).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import aliased

from journeys.conditions import Condition, Scope
from journeys.models import Enrollment, EnrollmentStatus, Send, SendStatus

COUNTED = (SendStatus.reserved, SendStatus.deferred, SendStatus.sending, SendStatus.unknown, SendStatus.sent)


def reminders_capped(journey: str, *, at_most: int, days: int = 30) -> Condition:
    """True when the enrollment's member already has `at_most` messages of `journey` in the last `days`
    days: use as `branch(~reminders_capped(...), then=[send(...)])`."""
    if at_most < 1 or days < 1:
        raise ValueError(f"reminders_capped({journey!r}): at_most and days must be >= 1, got {at_most}, {days}")

    def build(scope: Scope) -> ColumnElement[bool]:
        since = scope.now - timedelta(days=days)
        recent = (select(func.count(Send.id))
                  .where(Send.journey == journey, Send.recipient_kind == Enrollment.recipient_kind,
                         Send.recipient_id == Enrollment.recipient_id, Send.status.in_(COUNTED),
                         Send.reserved_at > since, Send.reserved_at <= scope.now)
                  .scalar_subquery())
        # the member's other enrollments of this journey due in this same pass, ahead of this one (lower
        # id): counted as if sent, so two reminders falling due together cannot both pass the cap
        other = aliased(Enrollment)
        ahead = (select(func.count(other.id))
                 .where(other.journey == journey, other.recipient_kind == Enrollment.recipient_kind,
                        other.recipient_id == Enrollment.recipient_id, other.status == EnrollmentStatus.active,
                        other.due_at <= scope.now, other.id < Enrollment.id)
                 # a search of ix_enrollments_member (migration j0006): without it, SQLite scanned the
                 # journey's active rows for each row (quadratic: 161 s of CPU at 100,000 members)
                 .scalar_subquery())
        return recent + ahead >= at_most

    return Condition(f"{journey}_reminders_capped",
                     f"the member got {at_most} or more {journey} messages in the last {days} days", build)
