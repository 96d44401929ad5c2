"""Points expiring: remind members 30, 7 and 1 days before their points expire.

Batches expiring in the same 7-day window (`digest_days`) are one reminder: their total and their
earliest date (audiences/queries/points_expiring.py). And a member gets at most REMINDER_CAP of these
reminders in any 30 days (journeys/reminder_cap.py): a step over the cap is passed over, not delayed.
"""

from journeys.conditions import batch_spent
from journeys.dsl import (
    Journey,
    after,
    before,
    branch,
    email,
    exit_when,
    push,
    send,
    sms,
    wait_until,
)
from journeys.reminder_cap import reminders_capped

DIGEST_DAYS = 7
REMINDER_CAP = 4
over_cap = reminders_capped("points_expiring", at_most=REMINDER_CAP, days=30)

JOURNEY = Journey(
    name="points_expiring",
    description=("A reminder 30, 7 and 1 days before points expire, batches expiring within the same "
                 f"{DIGEST_DAYS} days merged; at most {REMINDER_CAP} per member in 30 days; stops once they are used."),
    version=2,  # v1 reminded per batch; its in-flight enrollments finish with its steps (below)
    purpose="transactional",
    audience="points_expiring",
    audience_params={"within_days": 31, "digest_days": DIGEST_DAYS},
    occurrence_key="window_key",
    schedule="0 6 * * *",
    priority=80,
    stale=after("expires_at"),  # a reminder after the points expired is dropped, not sent late
    steps=[
        wait_until(before("expires_at", days=30), at="10:00"),
        exit_when(batch_spent),
        branch(~over_cap, then=[send(email("points_expiring/email_30d"), stale=before("expires_at", days=8))]),
        wait_until(before("expires_at", days=7), at="10:00"),
        exit_when(batch_spent),
        branch(~over_cap, then=[send(email("points_expiring/email_7d"), stale=before("expires_at", days=2))]),
        wait_until(before("expires_at", days=1), at="10:00"),
        exit_when(batch_spent),
        branch(~over_cap, then=[send(push("points_expiring/push_1d"), sms("points_expiring/sms_1d"),
                                     key="last_call_1d")]),
    ],
    earlier_versions={1: (
        wait_until(before("expires_at", days=30), at="10:00"),
        exit_when(batch_spent),
        send(email("points_expiring/email_30d"), stale=before("expires_at", days=8)),
        wait_until(before("expires_at", days=7), at="10:00"),
        exit_when(batch_spent),
        send(email("points_expiring/email_7d"), stale=before("expires_at", days=2)),
        wait_until(before("expires_at", days=1), at="10:00"),
        exit_when(batch_spent),
        send(push("points_expiring/push_1d"), sms("points_expiring/sms_1d"), key="last_call_1d"),
    )},
)
