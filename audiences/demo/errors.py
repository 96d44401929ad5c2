"""Errors of the demo data generator."""

from __future__ import annotations

from audiences.errors import LoyalflowError


class DemoDataExists(LoyalflowError):
    """The database already holds loyalty data; demo data is only written into an empty one
    (or after `reset`), so it never mixes with real rows."""


class DemoDataResetBlocked(LoyalflowError):
    """Reset could not delete the demo tables' rows because other tables still reference them."""
