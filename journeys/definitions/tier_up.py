"""Tier-up: congratulate members on the day they reach a higher tier, then remind them of benefits."""

from datetime import timedelta

from journeys.context_extras import tier_benefits
from journeys.dsl import Journey, email, push, send, wait

JOURNEY = Journey(
    name="tier_up",
    description="Congratulations on the day of a tier-up (push, else email); a benefits reminder 14 days later.",
    version=1,
    purpose="transactional",
    audience="tier_ups",
    audience_params={"within_days": 3},
    occurrence_key="tier_change_id",
    schedule="30 * * * *",
    priority=70,
    steps=[
        send(push("tier_up/push_congrats"), email("tier_up/email_congrats"), key="congrats",
             stale=timedelta(days=2)),
        wait(days=14, at="10:00"),
        send(email("tier_up/email_benefits")),
    ],
    enrich=tier_benefits,
)
