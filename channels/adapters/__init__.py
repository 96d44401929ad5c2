"""Channel adapters behind one interface; `adapters_for(settings)` picks them per delivery mode."""

from __future__ import annotations

from channels.adapters.base import Adapter, DeliveryResult, DeliveryStatus, OutgoingMessage, ProviderConfigError
from channels.adapters.memory import MemoryAdapter
from channels.settings import ChannelSettings, DeliveryMode


def adapters_for(settings: ChannelSettings) -> dict[str, Adapter]:
    """The adapter per channel: the outbox for all three, or SendGrid, Twilio and FCM.

    Provider adapters are built lazily per channel configured, so a deployment without push
    credentials can still send email; a channel it cannot serve is simply absent (the caller
    reports it), and a half-configured provider fails here with the missing setting's name.
    """
    if settings.delivery_mode is DeliveryMode.outbox:
        from channels.adapters.outbox import OutboxAdapter

        outbox = OutboxAdapter(settings)
        return {"email": outbox, "sms": outbox, "push": outbox}
    adapters: dict[str, Adapter] = {}
    if settings.sendgrid_api_key is not None:
        from channels.adapters.sendgrid import SendGridAdapter

        adapters["email"] = SendGridAdapter(settings)
    if settings.twilio_account_sid or settings.twilio_auth_token:
        from channels.adapters.twilio import TwilioAdapter

        adapters["sms"] = TwilioAdapter(settings)
    if settings.fcm_project_id or settings.fcm_credentials_file:
        from channels.adapters.fcm import FcmAdapter

        adapters["push"] = FcmAdapter(settings)
    return adapters


__all__ = ["Adapter", "DeliveryResult", "DeliveryStatus", "MemoryAdapter", "OutgoingMessage", "ProviderConfigError",
           "adapters_for"]
