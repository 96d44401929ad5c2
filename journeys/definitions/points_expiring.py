"""Points expiring: remind members 30, 7 and 1 days before a batch of their points expires."""

from journeys.conditions import batch_spent
from journeys.dsl import Journey, after, before, email, exit_when, push, send, sms, wait_until

JOURNEY = Journey(
    name="points_expiring",
    description="A reminder 30, 7 and 1 days before an earn batch expires; stops once the batch is used.",
    version=1,
    purpose="transactional",
    audience="points_expiring",
    audience_params={"within_days": 31},
    occurrence_key="batch_id",
    schedule="0 6 * * *",
    priority=80,
    stale=after("expires_at"),  # a reminder after the points expired is dropped, not sent late
    steps=[
        wait_until(before("expires_at", days=30), at="10:00"),
        exit_when(batch_spent),
        send(email("points_expiring/email_30d"), stale=before("expires_at", days=8)),
        wait_until(before("expires_at", days=7), at="10:00"),
        exit_when(batch_spent),
        send(email("points_expiring/email_7d"), stale=before("expires_at", days=2)),
        wait_until(before("expires_at", days=1), at="10:00"),
        exit_when(batch_spent),
        send(push("points_expiring/push_1d"), sms("points_expiring/sms_1d"), key="last_call_1d"),
    ],
)

