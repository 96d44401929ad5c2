"""Settings of the channels layer, from the environment only (prefix LOYALFLOW_).

Secrets are `SecretStr`, so printing the settings (or an error holding them) shows `**********`.
Every provider's base URL is a setting, so tests point the real SDKs at local fake servers.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from pydantic import SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from channels.errors import ChannelSettingsError


class DeliveryMode(str, Enum):
    outbox = "outbox"
    providers = "providers"


class ChannelSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOYALFLOW_", extra="ignore")

    delivery_mode: DeliveryMode = DeliveryMode.outbox
    outbox_dir: Path = Path("outbox")

    # SendGrid
    sendgrid_api_key: SecretStr | None = None
    sendgrid_base_url: str = "https://api.sendgrid.com"
    sendgrid_webhook_public_key: SecretStr | None = None
    """Base64 DER (SubjectPublicKeyInfo) ECDSA P-256 key from SendGrid's Mail Settings."""
    email_from: str = ""
    email_from_name: str = ""
    """Sender address and display name; unset, the program identity's (audiences/settings.py)."""

    # Twilio
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_base_url: str = "https://api.twilio.com"
    sms_from: str | None = None
    """E.164 sender number (or a Messaging Service SID starting with MG)."""

    # FCM HTTP v1
    fcm_project_id: str | None = None
    fcm_credentials_file: Path | None = None
    """A Google service-account JSON file; its token_uri decides where OAuth2 tokens come from."""
    fcm_base_url: str = "https://fcm.googleapis.com"

    # Sending
    request_timeout_seconds: float = 10.0
    max_attempts: int = 4
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    concurrency: int = 16
    email_rate_per_second: float = 100.0
    sms_rate_per_second: float = 10.0
    push_rate_per_second: float = 500.0

    # Policy
    quiet_hours_email: str = ""
    quiet_hours_sms: str = "21:00-08:00"
    quiet_hours_push: str = "21:00-08:00"
    """Local-time windows during which nothing is sent on that channel ("" = never quiet)."""
    frequency_cap: int = 3
    frequency_window_days: int = 7
    default_time_zone: str | None = None
    """IANA zone for recipients with no usable zone of their own or of their home store (counted
    per send in TickStats.zone_fallback); unset, such sends are skipped `invalid_time_zone`."""

    @field_validator("default_time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value:
            from channels.quiet_hours import zone

            zone(value)  # UnknownTimeZone (a ValueError) names the zone
        return value or None

    # Webhooks and links
    public_base_url: str = "http://127.0.0.1:8000"
    """The URL providers and members reach `loyalflow serve` at (signatures cover it)."""
    unsubscribe_secret: SecretStr | None = None
    unsubscribe_token_max_age_days: int = 60
    webhook_replay_window_seconds: int = 300
    """SendGrid events signed longer ago than this are refused as replays."""
    webhook_receipt_retention_days: int = 90
    """How long applied webhook requests are remembered, so a replay of one is refused."""
    request_body_timeout_seconds: float = 10.0
    """`loyalflow serve` gives up (408) on a request body that has not fully arrived by then."""
    program_name: str = ""
    """The program's name on the member pages and in the SMS HELP answer (default: the program identity's)."""
    support_email: str | None = None
    """The support address members are shown (default: the program identity's, else email_from)."""

    @model_validator(mode="after")
    def _program_identity(self) -> ChannelSettings:
        """Identity not set here comes from the one program identity, so no layer hard-codes it."""
        from audiences.settings import ProgramSettings

        program = ProgramSettings()
        self.program_name = self.program_name or program.program_name
        self.email_from = self.email_from or program.email_from
        self.email_from_name = self.email_from_name or program.sender_name
        self.support_email = self.support_email or program.support_email
        return self

    def require(self, *names: str) -> None:
        """Fail with one line naming every missing setting the caller needs."""
        missing = [n for n in names if getattr(self, n) in (None, "")]
        if missing:
            envs = ", ".join(f"LOYALFLOW_{n.upper()}" for n in missing)
            raise ChannelSettingsError(f"missing settings: {envs}")

    def secret(self, name: str) -> str:
        self.require(name)
        value = getattr(self, name)
        return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


def channel_settings() -> ChannelSettings:
    return ChannelSettings()
