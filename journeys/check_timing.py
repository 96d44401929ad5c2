"""Timing a journey asks for that the runtime cannot honour, found before it runs (warnings).

A pass runs about every minute (journeys/passes.py), sends in quiet hours are deferred to the window's
end, and `at="10:00"` lands on the member's local calendar day, which can be up to a day away from
the field instant it was computed from. None of this is an error, but each surprises a marketer.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from channels.quiet_hours import QuietWindow
from journeys.dsl import FieldTime, Journey, Send, Step, Wait
from journeys.program import compile_steps
from templates.problems import Problem

PASS_INTERVAL = timedelta(minutes=1)
"""How often every runtime advances what is due (the scheduler's minute job, the pass deployment)."""


def _warn(step: Send | Wait, message: str) -> Problem:
    return Problem(step.where.path, step.where.line, message, warning=True)


def _window(w: QuietWindow) -> str:
    return f"{w.start:%H:%M}-{w.end:%H:%M}"


def timing_warnings(journey: Journey, steps: tuple[Step, ...], quiet: Mapping[str, QuietWindow | None]) -> list[Problem]:
    out: list[Problem] = []
    last_wait: Wait | None = None
    for instr in compile_steps(steps):
        if isinstance(instr, Wait):
            last_wait = instr
            continue
        if not isinstance(instr, Send):
            continue
        stale = instr.stale or journey.stale
        if isinstance(stale, timedelta) and stale < 2 * PASS_INTERVAL:
            out.append(_warn(instr, f"journey {journey.name!r}: this send goes stale {stale} after enrollment, less "
                                    f"than two pass intervals ({PASS_INTERVAL} each): it may be dropped before a "
                                    "pass reaches it"))
        until = last_wait.until if last_wait is not None else None
        if isinstance(stale, FieldTime) and until is not None and until.field == stale.field:
            gap = stale.offset - until.offset
            if last_wait is not None and last_wait.at is not None and gap < timedelta(days=1):
                out.append(_warn(instr, f"journey {journey.name!r}: the wait before this send ends at "
                                        f"{last_wait.at:%H:%M} local on the day {until.describe()}, but the send "
                                        f"goes stale {stale.describe()}, {gap} later: for members in some zones the "
                                        "local time falls after the deadline and the message is dropped"))
            elif timedelta(0) <= gap < 2 * PASS_INTERVAL:
                out.append(_warn(instr, f"journey {journey.name!r}: the send goes stale {gap} after the wait before "
                                        f"it ends, less than two pass intervals: it may be dropped before a pass "
                                        "reaches it"))
        if last_wait is not None and last_wait.at is not None:
            for message in instr.messages:
                window = quiet.get(message.channel)
                if window is not None and window.contains(last_wait.at):
                    out.append(_warn(instr, f"journey {journey.name!r}: {message.channel} at {last_wait.at:%H:%M} "
                                            f"local is inside its quiet hours ({_window(window)}): it will be "
                                            f"deferred to {window.end:%H:%M}"))
        last_wait = None
    return out
