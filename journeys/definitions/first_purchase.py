"""First purchase: thank the member within seconds of the event, then remind them of their points
three days later unless they already redeemed some. Entered by the `purchase` event, not a cron."""

from datetime import timedelta

from journeys.conditions import event_happened
from journeys.dsl import Journey, email, event, exit_when, push, send, sms, wait

JOURNEY = Journey(
    name="first_purchase",
    description="A thank-you email seconds after a member's first purchase; a points reminder (push, else SMS) "
                "3 days later unless they redeemed.",
    version=1,
    purpose="transactional",
    trigger=event("purchase", where={"first_purchase": True},
                  properties={"amount": float, "currency": str, "store_name": str, "points_earned": int}),
    priority=75,
    steps=[
        send(email("first_purchase/email_thanks"), key="thanks", stale=timedelta(hours=24)),
        wait(days=3, at="10:00"),
        exit_when(event_happened("redemption")),
        send(push("first_purchase/push_points_reminder"), sms("first_purchase/sms_points_reminder"),
             key="points_reminder", stale=timedelta(days=5)),
    ],
)
