"""Tier-up: congratulate members on the day they reach a higher tier, ask a week later how likely they
are to recommend the program (NPS: one tap in the email, or "reply 0-10" by SMS), send detractors a
service-recovery message, then remind everyone of their benefits."""

from datetime import timedelta

from journeys.conditions import nps_detractor
from journeys.context_extras import tier_benefits
from journeys.dsl import Journey, branch, email, push, send, sms, wait
from journeys.surveys import NPS, compose, survey_links

STEPS_V1 = [
    send(push("tier_up/push_congrats"), email("tier_up/email_congrats"), key="congrats",
         stale=timedelta(days=2)),
    wait(days=14, at="10:00"),
    send(email("tier_up/email_benefits")),
]

JOURNEY = Journey(
    name="tier_up",
    description="Congratulations on the day of a tier-up (push, else email); an NPS question 7 days later "
                "(email, else SMS) with a service-recovery email for detractors; a benefits reminder at 14 days.",
    version=2,
    purpose="transactional",
    audience="tier_ups",
    audience_params={"within_days": 3},
    occurrence_key="tier_change_id",
    schedule="30 * * * *",
    priority=70,
    steps=[
        send(push("tier_up/push_congrats"), email("tier_up/email_congrats"), key="congrats",
             stale=timedelta(days=2)),
        wait(days=7, at="10:00"),
        send(email("tier_up/email_nps"), sms("tier_up/sms_nps"), key="nps", stale=timedelta(days=10)),
        wait(days=3, at="10:00"),
        branch(nps_detractor(step="nps"), then=[send(email("tier_up/email_recovery"), key="recovery")]),
        wait(days=4, at="10:00"),
        send(email("tier_up/email_benefits")),
    ],
    earlier_versions={1: STEPS_V1},
    enrich=compose(tier_benefits, survey_links("tier_up", surveys={"nps": NPS})),
)
