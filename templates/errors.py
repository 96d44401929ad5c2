"""Errors of the template layer; each names the template file (and line when known)."""

from __future__ import annotations

from audiences.errors import LoyalflowError


class TemplateError(LoyalflowError):
    """A template could not be loaded, compiled or rendered; `path:line: message` in one line."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path = path
        self.line = line
        self.message = message
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")


class TemplateNotFound(TemplateError):
    """No template for a (journey, step), or no file for a locale and none to fall back to."""


class SegmentBudgetExceeded(TemplateError):
    """An SMS rendered to more segments than its template allows (cost control)."""


class PushPayloadTooLarge(TemplateError):
    """A push payload over FCM's 4,096-byte limit: FCM would reject it."""
