"""What the adapters send validates against the providers' official specs (Prism mock servers).

Each test also sends a request that breaks the spec, to prove Prism is really validating here.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from pydantic import SecretStr

from channels.adapters.base import DeliveryStatus
from channels.adapters.sendgrid import SendGridAdapter, build_mail
from channels.adapters.twilio import TwilioAdapter
from channels.ratelimit import TokenBucket
from channels.settings import ChannelSettings
from tests.channels.messages import email, sms
from tests.contract.prism import Prism

ACCOUNT_SID = "AC" + "a" * 32


def settings(tmp_path: Path, **kw: object) -> ChannelSettings:
    base: dict[str, object] = {
        "outbox_dir": tmp_path,
        "sendgrid_api_key": SecretStr("SG.contract"),
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": SecretStr("token"),
        "sms_from": "+12015550100",
        "public_base_url": "https://loyalflow.example",
        "max_attempts": 1,
        "concurrency": 2,
    }
    return ChannelSettings(**(base | kw))  # type: ignore[arg-type]


def test_sendgrid_mail_send_matches_the_spec(sendgrid_prism: Prism, tmp_path: Path) -> None:
    config = settings(tmp_path, sendgrid_base_url=sendgrid_prism.base_url)
    adapter = SendGridAdapter(config, bucket=TokenBucket(1000))
    results = adapter.send([email(1), email(2, purpose="transactional")])
    assert [r.status for r in results] == [DeliveryStatus.accepted] * 2, results

    body = build_mail(email(3), config)
    broken = body | {"custom_args": {"ledger_id": 3}}  # SendGrid refuses non-string custom_args
    response = httpx.post(f"{sendgrid_prism.base_url}/v3/mail/send", json=broken,
                          headers={"Authorization": "Bearer SG.contract"})
    assert response.status_code in (400, 422), response.text
    missing = {k: v for k, v in body.items() if k != "personalizations"}
    response = httpx.post(f"{sendgrid_prism.base_url}/v3/mail/send", json=missing,
                          headers={"Authorization": "Bearer SG.contract"})
    assert response.status_code in (400, 422), response.text


def test_twilio_message_create_matches_the_spec(twilio_prism: Prism, tmp_path: Path) -> None:
    config = settings(tmp_path, twilio_base_url=twilio_prism.base_url)
    results = TwilioAdapter(config, bucket=TokenBucket(1000)).send([sms(1), sms(2, to="+33612345678")])
    assert [r.status for r in results] == [DeliveryStatus.accepted] * 2, results
    assert all(r.provider_message_id for r in results)

    path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    broken = httpx.post(f"{twilio_prism.base_url}{path}", data={"To": "+12015550123", "Body": "x", "ValidityPeriod": "soon"},
                        auth=(ACCOUNT_SID, "token"))
    assert broken.status_code in (400, 422), broken.text
    bad_account = httpx.post(f"{twilio_prism.base_url}/2010-04-01/Accounts/XX1/Messages.json",
                             data={"To": "+12015550123", "From": "+12015550100", "Body": "x"}, auth=(ACCOUNT_SID, "token"))
    assert bad_account.status_code in (400, 422), bad_account.text
