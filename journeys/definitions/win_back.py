"""Win-back: an offer to lapsed members sized by their value, then an SMS if they still stay away.

The offer email is an A/B test: the "we miss you" email against an "ends in 7 days" one; the
variant with more purchases within 14 days of its email is promoted for new enrollments once
significant (journeys/variants.py; decisions in the ab_decisions table).
"""

from datetime import timedelta

from journeys.conditions import purchased_since_enrollment
from journeys.context_extras import win_back_offer
from journeys.dsl import Journey, Variant, WinnerRule, email, exit_when, send, sms, wait

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
        send(email("win_back/email_offer"),
             variants=[Variant("miss_you", weight=50),
                       Variant("ends_soon", template="win_back/email_offer_urgent", weight=50)],
             winner=WinnerRule(metric="conversion", within=timedelta(days=14), min_sample=500, alpha=0.05)),
        wait(days=7, at="18:00"),
        exit_when(purchased_since_enrollment),
        send(sms("win_back/sms_offer")),
    ],
)
