"""Staff bulletin: every Monday, each role and store gets the new program updates, their store's week
next to the program's (journeys/bulletin.py), more for managers, an "I've read it" link and a 1-5
"how useful was this" pulse (journeys/surveys.py)."""

from journeys.bulletin import store_bulletin
from journeys.context_extras import staff_bulletin_content
from journeys.dsl import WEEKLY, Journey, email, send
from journeys.surveys import PULSE, compose, survey_links

JOURNEY = Journey(
    name="staff_bulletin",
    description="Weekly program bulletin for staff: new updates for their role and store, their store's week "
                "next to the program's, a read link and a pulse question.",
    version=1,
    purpose="staff",
    audience="staff",
    occurrence_key=WEEKLY,
    schedule="0 7 * * 1",
    priority=90,
    enrich=compose(staff_bulletin_content, store_bulletin,
                   survey_links("staff_bulletin", surveys={"email_weekly": PULSE}, reads=("email_weekly",))),
    steps=[send(email("staff_bulletin/email_weekly"))],
)
