"""Settings come from LOYALFLOW_ variables, secrets stay masked, and the adapters follow them."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from channels.adapters import adapters_for
from channels.adapters.outbox import OutboxAdapter
from channels.adapters.sendgrid import SendGridAdapter
from channels.errors import ChannelSettingsError
from channels.settings import ChannelSettings, DeliveryMode


def test_secrets_come_from_the_environment_and_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOYALFLOW_SENDGRID_API_KEY", "SG.very-secret")
    monkeypatch.setenv("LOYALFLOW_DELIVERY_MODE", "providers")
    monkeypatch.setenv("LOYALFLOW_QUIET_HOURS_SMS", "20:00-09:00")
    settings = ChannelSettings()
    assert settings.delivery_mode is DeliveryMode.providers
    assert settings.secret("sendgrid_api_key") == "SG.very-secret"
    assert settings.quiet_hours_sms == "20:00-09:00"
    assert "SG.very-secret" not in repr(settings) and "SG.very-secret" not in str(settings.model_dump())


def test_adapters_follow_the_delivery_mode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    outbox = adapters_for(ChannelSettings(outbox_dir=tmp_path))
    assert set(outbox) == {"email", "sms", "push"} and all(isinstance(a, OutboxAdapter) for a in outbox.values())

    email_only = adapters_for(ChannelSettings(delivery_mode="providers", sendgrid_api_key=SecretStr("SG.x")))
    assert set(email_only) == {"email"} and isinstance(email_only["email"], SendGridAdapter)

    with pytest.raises(ChannelSettingsError, match="missing settings: LOYALFLOW_TWILIO_AUTH_TOKEN, LOYALFLOW_SMS_FROM"):
        adapters_for(ChannelSettings(delivery_mode="providers", twilio_account_sid="AC1"))
