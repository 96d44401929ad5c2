"""Welcome: greet new members, show them the app, then a tip — stop selling once they buy."""

from journeys.conditions import has_device, purchased_since_enrollment
from journeys.dsl import ONCE, Journey, branch, email, exit_when, push, send, sms, wait

JOURNEY = Journey(
    name="welcome",
    description="New members: a welcome email now, an app push after 2 days, a tips SMS at 7 days.",
    version=1,
    purpose="transactional",
    audience="new_members",
    audience_params={"within_days": 3},
    occurrence_key=ONCE,
    schedule="0 * * * *",
    priority=60,
    steps=[
        send(email("welcome/email_welcome")),
        wait(days=2, at="11:00"),
        exit_when(purchased_since_enrollment),
        branch(has_device, then=[send(push("welcome/push_getting_started"), purpose="marketing")]),
        wait(days=5, at="12:00"),
        exit_when(purchased_since_enrollment),
        send(sms("welcome/sms_tips"), purpose="marketing"),
    ],
)
