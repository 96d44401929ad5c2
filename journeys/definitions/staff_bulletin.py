"""Staff bulletin: every Monday, each role and store gets the new program updates and the week's figures."""

from journeys.context_extras import staff_bulletin_content
from journeys.dsl import WEEKLY, Journey, email, send

JOURNEY = Journey(
    name="staff_bulletin",
    description="Weekly program bulletin for staff: new updates for their role and store, and the week's figures.",
    version=1,
    purpose="staff",
    audience="staff",
    occurrence_key=WEEKLY,
    schedule="0 7 * * 1",
    priority=90,
    enrich=staff_bulletin_content,
    steps=[send(email("staff_bulletin/email_weekly"))],
)
