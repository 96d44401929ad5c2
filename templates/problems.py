"""What the template check reports: one problem, at one place (shared with `loyalflow check`)."""

from __future__ import annotations

from dataclasses import dataclass

from audiences.errors import PlacedError


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    line: int | None
    message: str
    warning: bool = False
    """A warning is shown but does not fail the check (e.g. timing the runtime may not honour)."""

    @classmethod
    def of(cls, error: PlacedError) -> Problem:
        return cls(error.path, error.line, error.message)

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {'warning: ' if self.warning else ''}{self.message}"
