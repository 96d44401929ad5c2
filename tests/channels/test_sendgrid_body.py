"""The plain v3 body the SendGrid adapter builds is what the SDK's `Mail` helper would have built."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import SecretStr
from sendgrid.helpers.mail import (
    Category,
    Content,
    CustomArg,
    From,
    Header,
    Mail,
    MimeType,
    To,
)

from channels.adapters.base import OutgoingMessage, unsubscribe_headers
from channels.adapters.headers import clean_text
from channels.adapters.sendgrid import build_mail
from channels.errors import MessageRejected
from channels.settings import ChannelSettings
from templates.rendered import RenderedSms
from tests.channels.messages import email


def with_helpers(message: OutgoingMessage, settings: ChannelSettings) -> dict[str, object]:
    """The body as the adapter built it before, with the SDK's helper objects."""
    content = message.content
    mail = Mail(from_email=From(settings.email_from, clean_text(settings.email_from_name)), to_emails=To(message.to))
    mail.subject = clean_text(content.subject)  # type: ignore[union-attr]
    mail.content = [Content(MimeType.text, content.text), Content(MimeType.html, content.html)]  # type: ignore[union-attr]
    mail.custom_arg = [CustomArg("ledger_id", str(message.ledger_id)), CustomArg("journey", message.journey),
                       CustomArg("step", message.step), CustomArg("purpose", message.purpose),
                       CustomArg("recipient_kind", message.recipient_kind),
                       CustomArg("recipient_id", str(message.recipient_id))]
    if message.categories:
        mail.category = [Category(c) for c in message.categories[:10]]
    for name, value in unsubscribe_headers(message).items():
        mail.header = Header(name, value)
    return mail.get()


def normalised(body: dict[str, object]) -> dict[str, object]:
    return {**body, "categories": sorted(body.get("categories", []))}  # type: ignore[call-overload]


@pytest.mark.parametrize("name", ["Loyalflow Rewards", "Café «Bonus»", ""])
@pytest.mark.parametrize("purpose", ["marketing", "transactional"])
def test_the_plain_body_equals_the_helpers_body(tmp_path: Path, name: str, purpose: str) -> None:
    settings = ChannelSettings(_env_file=None, outbox_dir=tmp_path, sendgrid_api_key=SecretStr("SG.x"),
                               email_from_name=name)
    message = email(12, purpose=purpose)
    assert normalised(build_mail(message, settings)) == normalised(with_helpers(message, settings))


def test_twelve_categories_are_cut_to_the_ten_sendgrid_allows(tmp_path: Path) -> None:
    settings = ChannelSettings(_env_file=None, outbox_dir=tmp_path, sendgrid_api_key=SecretStr("SG.x"))
    message = replace(email(3), categories=tuple(f"c{i}" for i in range(12)))
    assert build_mail(message, settings)["categories"] == [f"c{i}" for i in range(10)]


def test_a_message_that_is_not_an_email_is_refused_for_its_recipient_only(tmp_path: Path) -> None:
    settings = ChannelSettings(_env_file=None, outbox_dir=tmp_path, sendgrid_api_key=SecretStr("SG.x"))
    sms = RenderedSms(text="hi", encoding="GSM-7", segments=1)  # type: ignore[arg-type]
    message = replace(email(4), content=sms)
    with pytest.raises(MessageRejected):
        build_mail(message, settings)
