"""Win-back: an offer to lapsed members sized by their value, then an SMS if they still stay away."""

from journeys.context_extras import win_back_offer
from journeys.conditions import purchased_since_enrollment
from journeys.dsl import Journey, email, exit_when, send, sms, wait

JOURNEY = Journey(
    name="win_back",
    description="Lapsed members (RFM): an offer email, then an SMS after 7 days if still no purchase; 10% holdout.",
    version=1,
    purpose="marketing",
    audience="lapsed",
    audience_params={"lapsed_days": 90, "min_value_score": 2},
    occurrence_key="last_purchase_at",  # a new lapse after a new purchase is a new episode
    schedule="0 7 * * *",
    priority=40,
    holdout_percent=10,
    enrich=win_back_offer,
    steps=[
        send(email("win_back/email_offer")),
        wait(days=7, at="18:00"),
        exit_when(purchased_since_enrollment),
        send(sms("win_back/sms_offer")),
    ],
)
