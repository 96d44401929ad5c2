"""One enrollment being advanced in memory, and the outcomes a step hands back to it.

A step (wait, exit check, send) never reaches into this state: it returns an `Outcome` per
enrollment and the engine applies it, so delivery and the ledger know nothing of the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from journeys.models import EnrollmentStatus
from journeys.program import Instruction


@dataclass(slots=True)
class EnrollmentRow:
    """The columns of an enrollment the engine reads and writes back, as a plain row (no ORM object:
    the unit of work's flush of thousands of dirty objects per chunk cost more than the sends)."""

    id: int
    journey_version: int
    recipient_kind: str
    recipient_id: int
    enrolled_at: datetime
    step_index: int
    due_at: datetime | None
    context: dict[str, Any] | None
    status: EnrollmentStatus = EnrollmentStatus.active
    exit_reason: str | None = None
    variant: str | None = None
    """Its A/B arm (journeys/variants.py), read only."""


@dataclass(frozen=True, slots=True)
class Advance:
    """The step is over: go on to the next instruction (or to `to`, for a jump). `ended` is when a
    wait that has already passed ended: later waits count from there, not from the pass."""

    to: int | None = None
    ended: datetime | None = None


@dataclass(frozen=True, slots=True)
class Park:
    """Not now: the enrollment waits until `until` (a wait, quiet hours, a retry), then runs this step again
    (`next_step=False`) or the one after (`next_step=True`, a wait that ended its own step)."""

    until: datetime
    next_step: bool = False


@dataclass(frozen=True, slots=True)
class Done:
    """The enrollment ends here with `status` (e.g. exited) and `reason`."""

    status: EnrollmentStatus
    reason: str


Outcome = Advance | Park | Done


@dataclass
class State:
    """An enrollment being advanced in memory; written back once per chunk."""

    row: EnrollmentRow
    program: tuple[Instruction, ...]
    pc: int
    due: datetime
    time_zone: str | None = None
    """The zone its times are computed in (its own, its store's or the program default; None: UTC)."""
    parked: bool = False
    done: bool = False

    @property
    def context(self) -> dict[str, Any]:
        return self.row.context or {}

    def apply(self, outcome: Outcome) -> None:
        if isinstance(outcome, Advance):
            self.pc = self.pc + 1 if outcome.to is None else outcome.to
            if outcome.ended is not None:
                self.due = max(self.due, outcome.ended)
        elif isinstance(outcome, Park):
            self.pc += 1 if outcome.next_step else 0
            self.due, self.parked = outcome.until, True
        else:
            self.row.status, self.row.exit_reason, self.done = outcome.status, outcome.reason, True
