"""Settings of the data layer, read from the environment only (never from files in the repo).

`ProgramSettings` is the program's identity (name, support address, sender, currency, default locale
and time zone). It sits in the lowest layer because every layer shows it: templates format money in
its currency, channels put its name on member pages and in the From header, journeys put it in
every render context. One place, one default each.
"""

from __future__ import annotations

from typing import Any

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///loyalflow.db"


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOYALFLOW_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    """SQLAlchemy URL; the default is a SQLite file in the working directory."""

    database_echo: bool = False


def database_settings() -> DatabaseSettings:
    return DatabaseSettings()


class ProgramSettings(BaseSettings):
    """Who the program is: LOYALFLOW_PROGRAM_NAME, LOYALFLOW_SUPPORT_EMAIL, LOYALFLOW_EMAIL_FROM,
    LOYALFLOW_EMAIL_FROM_NAME, LOYALFLOW_CURRENCY, LOYALFLOW_DEFAULT_LOCALE, LOYALFLOW_DEFAULT_TIME_ZONE."""

    model_config = SettingsConfigDict(env_prefix="LOYALFLOW_", extra="ignore")

    program_name: str = "Loyalflow Rewards"
    support_email: str | None = None
    """The address members are told to write to (default: email_from)."""
    email_from: str = "rewards@loyalflow.example"
    email_from_name: str | None = None
    """The sender's display name (default: program_name)."""
    currency: str = "USD"
    """ISO 4217 code of the program's money (offers, spend thresholds): every amount is shown in it."""
    default_locale: str = "en"
    """Language for members with no locale of their own, and the last step of every fallback chain."""
    default_time_zone: str | None = None

    @field_validator("currency")
    @classmethod
    def _iso_4217(cls, value: str) -> str:
        from babel.numbers import list_currencies

        code = value.strip().upper()
        if code not in list_currencies():
            raise ValueError(f"LOYALFLOW_CURRENCY: {value!r} is not an ISO 4217 currency code (e.g. EUR, GBP, USD)")
        return code

    @field_validator("default_locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        from babel import Locale, UnknownLocaleError

        try:
            Locale.parse(value.replace("-", "_"))
        except (UnknownLocaleError, ValueError):
            raise ValueError(f"LOYALFLOW_DEFAULT_LOCALE: {value!r} is not a known locale (e.g. en, fr-CA)") from None
        return value

    @property
    def sender_name(self) -> str:
        return self.email_from_name or self.program_name

    @property
    def support_address(self) -> str:
        return self.support_email or self.email_from

    def render_context(self) -> dict[str, Any]:
        """The `program` variable of every render context (sends, preview, gallery, simulate)."""
        return {"name": self.program_name, "support_email": self.support_address, "currency": self.currency,
                "sender_name": self.sender_name, "sender_email": self.email_from,
                "default_locale": self.default_locale}


def program_settings() -> ProgramSettings:
    return ProgramSettings()


def program_context(settings: ProgramSettings | None = None) -> dict[str, Any]:
    """`program` for a render context, from `settings` or the environment (a fresh dict every call)."""
    return (settings or program_settings()).render_context()
