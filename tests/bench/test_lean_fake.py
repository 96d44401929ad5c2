"""The lean benchmark fake answers the official SendGrid and Twilio SDKs and counts what it accepted."""

from __future__ import annotations

import pytest

from tests.bench.lean_fake import SENDGRID_KEY, TWILIO_SID, TWILIO_TOKEN, LeanFakes


@pytest.mark.slow
def test_sdks_are_answered_counted_and_duplicates_detected() -> None:
    from sendgrid import SendGridAPIClient
    from sendgrid.helpers.mail import CustomArg, Mail
    from twilio.base.exceptions import TwilioRestException
    from twilio.rest import Client

    with LeanFakes(latency=0.0) as fake:
        sendgrid = SendGridAPIClient(api_key=SENDGRID_KEY, host=fake.url)
        for ledger in (1, 2, 2):
            mail = Mail(from_email="rewards@example.com", to_emails="member@example.com", subject="s",
                        html_content="<p>hello</p>")
            mail.custom_arg = [CustomArg("ledger_id", str(ledger))]
            answer = sendgrid.send(mail)
            assert answer.status_code == 202 and answer.headers["X-Message-Id"]
        twilio = Client(TWILIO_SID, TWILIO_TOKEN)
        twilio.api.base_url = fake.url
        created = twilio.messages.create(to="+12015550123", from_="+12015550100", body="hi",
                                         status_callback="https://example.com/cb?ledger_id=7")
        assert created.sid.startswith("SM") and created.status == "queued"
        wrong = Client(TWILIO_SID, "not-the-token")
        wrong.api.base_url = fake.url
        with pytest.raises(TwilioRestException):
            wrong.messages.create(to="+12015550123", from_="+12015550100", body="hi")

        counts = fake.counts()
        assert counts["sendgrid"] == {"accepted": 3, "duplicates": 1}
        assert counts["twilio"] == {"accepted": 1, "duplicates": 0}
        assert counts["requests"] == 5 and counts["rejected"] == 1 and counts["without_ledger_id"] == 0
        assert counts["cpu_s"] >= 0 and counts["cpu_us_per_request"] >= 0
        fake.reset()
        assert fake.counts()["sendgrid"] == {"accepted": 0, "duplicates": 0}
