"""Errors of the channels layer; each says what went wrong and where, in one line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from audiences.errors import LoyalflowError

if TYPE_CHECKING:
    from channels.adapters.base import DeliveryResult


class ChannelsError(LoyalflowError):
    """Base of the channels layer's errors."""


class ProviderConfigError(ChannelsError):
    """The provider refused our credentials or account (401/403): stop the run, send nothing more.

    `results` holds what was settled before the stop (messages already accepted keep their
    provider id) so the caller can record them and never send them again. With concurrent sending
    they need not be a prefix of the batch: match them by ledger id; `unsent` lists the ledger ids
    that got no result (never accepted: safe to send again once the credentials are fixed).
    """

    def __init__(
        self,
        provider: str,
        status: int,
        detail: str,
        results: list[DeliveryResult] | None = None,
        unsent: list[int] | None = None,
    ):
        self.provider = provider
        self.status = status
        self.detail = detail
        self.results: list[DeliveryResult] = list(results or [])
        self.unsent: list[int] = list(unsent or [])
        super().__init__(
            f"{provider} refused the credentials (HTTP {status}): {detail}; "
            "the run stopped and nothing more was sent - check the LOYALFLOW_ settings for this provider"
        )


class ConsentImportError(ChannelsError):
    """A consent CSV cannot be read at all (missing file, no header, wrong columns)."""


class ChannelSettingsError(ChannelsError):
    """A setting the chosen delivery mode needs is missing or malformed."""
