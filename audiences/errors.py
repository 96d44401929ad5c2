"""Errors of the data layer. Each says what went wrong and where, in one line."""

from __future__ import annotations


class LoyalflowError(Exception):
    """Base of every error loyalflow reports to a person (the CLI prints it on one line)."""


class PlacedError(LoyalflowError):
    """An error at a place in a file a person wrote (a template, a journey): `path:line: message`.

    The place travels as attributes, never parsed back out of the text (which may quote data)."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path = path
        self.line = line
        self.message = message
        super().__init__(f"{self.place}: {message}")

    @property
    def place(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else self.path


class DatabaseURLInvalid(LoyalflowError):
    """LOYALFLOW_DATABASE_URL cannot be parsed or names a driver we do not support."""


class DatabaseUnavailable(LoyalflowError):
    """The database could not be reached (server down, wrong host, missing file folder)."""


class UnknownAudience(LoyalflowError):
    """An audience name that is not registered; the message lists the known ones."""


class InvalidParameter(LoyalflowError):
    """A parameter given to a command or query is out of range or malformed."""


class UnknownRecipient(LoyalflowError):
    """A member or staff id that is not in the database."""
