"""What a tick did, in counts: the engine returns it, flows report it, simulation prints it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TickStats:
    enrolled: int = 0
    held_out: int = 0
    advanced: int = 0
    completed: int = 0
    deferred: int = 0
    sent: Counter[str] = field(default_factory=Counter)
    """per channel"""
    skipped: Counter[str] = field(default_factory=Counter)
    """per reason"""
    failed: Counter[str] = field(default_factory=Counter)
    """per reason"""
    exited: Counter[str] = field(default_factory=Counter)
    """per exit condition"""
    zone_fallback: Counter[str] = field(default_factory=Counter)
    """sends timed in a zone other than the recipient's own, per source: store, default, none"""

    def merge(self, other: TickStats) -> TickStats:
        for name in ("enrolled", "held_out", "advanced", "completed", "deferred"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("sent", "skipped", "failed", "exited", "zone_fallback"):
            getattr(self, name).update(getattr(other, name))
        return self

    @property
    def messages(self) -> int:
        return sum(self.sent.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "enrolled": self.enrolled, "held_out": self.held_out, "advanced": self.advanced,
            "completed": self.completed, "deferred": self.deferred,
            "sent": _nonzero(self.sent), "skipped": _nonzero(self.skipped),
            "failed": _nonzero(self.failed), "exited": _nonzero(self.exited),
            "zone_fallback": _nonzero(self.zone_fallback),
        }


    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TickStats:
        """The inverse of `as_dict` (task results cross Prefect as plain dicts)."""
        s = cls(**{k: d.get(k, 0) for k in ("enrolled", "held_out", "advanced", "completed", "deferred")})
        for name in ("sent", "skipped", "failed", "exited", "zone_fallback"):
            getattr(s, name).update(d.get(name, {}))
        return s


def _nonzero(counts: Counter[str]) -> dict[str, int]:
    return {k: v for k, v in sorted(counts.items()) if v}
