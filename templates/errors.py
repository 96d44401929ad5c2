"""Errors of the template layer; each names the template file (and line when known)."""

from __future__ import annotations

from audiences.errors import PlacedError


class TemplateError(PlacedError):
    """A template could not be loaded, compiled or rendered; `path:line: message` in one line."""


class TemplateNotFound(TemplateError):
    """No template for a (journey, step), or no file for a locale and none to fall back to."""


class SegmentBudgetExceeded(TemplateError):
    """An SMS rendered to more segments than its template allows (cost control)."""


class PushPayloadTooLarge(TemplateError):
    """A push payload over FCM's 4,096-byte limit: FCM would reject it."""
