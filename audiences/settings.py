"""Settings of the data layer, read from the environment only (never from files in the repo)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///loyalflow.db"


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOYALFLOW_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    """SQLAlchemy URL; the default is a SQLite file in the working directory."""

    database_echo: bool = False


def database_settings() -> DatabaseSettings:
    return DatabaseSettings()
