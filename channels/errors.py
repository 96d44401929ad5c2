"""Errors of the channels layer; each says what went wrong and where, in one line.

Messages carry ids and codes only (ledger ids, provider names, HTTP statuses, error codes): Prefect
logs a task's exception with its message and stores it, so no address, name or message text may
appear in one. This module imports nothing from the adapters (they import it).
"""

from __future__ import annotations

from typing import Any

from audiences.errors import LoyalflowError


class ChannelsError(LoyalflowError):
    """Base of the channels layer's errors."""


class ProviderConfigError(ChannelsError):
    """The provider refused our credentials or account (401/403): stop the run, send nothing more.

    `results` holds what was settled before the stop (DeliveryResults; messages already accepted
    keep their provider id) so the caller can record them and never send them again. With concurrent
    sending they need not be a prefix of the batch: match them by ledger id; `unsent` lists the ledger
    ids that got no result (never accepted: safe to send again once the credentials are fixed).
    """

    def __init__(
        self,
        provider: str,
        status: int,
        detail: str,
        results: list[Any] | None = None,
        unsent: list[int] | None = None,
    ):
        self.provider = provider
        self.status = status
        self.detail = detail
        self.results: list[Any] = list(results or [])
        self.unsent: list[int] = list(unsent or [])
        super().__init__(
            f"{provider} refused the credentials (HTTP {status}): {detail}; "
            "the run stopped and nothing more was sent - check the LOYALFLOW_ settings for this provider"
        )


class MessageRejected(ChannelsError):
    """One message cannot be built for its provider (a header, an address, the content's kind).

    It is that recipient's failure (`code` becomes the ledger reason), never the batch's; the
    message names the ledger id and the code, never the offending value.
    """

    def __init__(self, ledger_id: int, code: str, detail: str = "") -> None:
        self.ledger_id = ledger_id
        self.code = code
        super().__init__(f"ledger {ledger_id}: {code}" + (f" ({detail})" if detail else ""))


class ConsentImportError(ChannelsError):
    """A consent CSV cannot be read at all (missing file, no header, wrong columns)."""


class ChannelSettingsError(ChannelsError):
    """A setting the chosen delivery mode needs is missing or malformed."""
