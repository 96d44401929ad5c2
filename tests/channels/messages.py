"""Builders of outgoing messages for the adapter tests."""

from __future__ import annotations

from channels.adapters.base import OutgoingMessage
from templates.rendered import RenderedEmail, RenderedPush, RenderedSms


def email(ledger_id: int, to: str = "ana@example.com", purpose: str = "marketing") -> OutgoingMessage:
    return OutgoingMessage(
        ledger_id=ledger_id,
        channel="email",
        purpose=purpose,
        journey="win_back",
        step="email_offer",
        recipient_kind="member",
        recipient_id=ledger_id,
        to=to,
        content=RenderedEmail("We miss you, Ana", "20% off", "<html><body><p>Hello Ana</p></body></html>", "Hello Ana"),
        unsubscribe_url=f"https://loyalflow.test/u/tok{ledger_id}" if purpose == "marketing" else None,
        categories=("win_back", "marketing"),
    )


def sms(ledger_id: int, to: str = "+12015550123") -> OutgoingMessage:
    return OutgoingMessage(
        ledger_id, "sms", "marketing", "win_back", "sms_offer", "member", ledger_id, to,
        RenderedSms("Loyalflow: 20% off this week. Reply STOP to opt out.", "GSM-7", 1),
    )


def push(ledger_id: int, token: str = "device-token-1") -> OutgoingMessage:
    return OutgoingMessage(
        ledger_id, "push", "transactional", "points_expiring", "push_1d", "member", ledger_id, token,
        RenderedPush("Points expire tomorrow", "120 points expire tomorrow", "loyalflow://points", {"points": "120"}),
    )
