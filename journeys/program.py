"""Steps compiled to a flat program: what an enrollment's step_index points into.

A branch becomes a conditional jump, so advancing an enrollment is a loop over a list, and
reachability (for `loyalflow check`) is a walk over jumps.
"""

from __future__ import annotations

from dataclasses import dataclass

from journeys.conditions import Condition
from journeys.dsl import Branch, End, ExitWhen, Journey, Send, Step, Wait, Where


@dataclass(frozen=True)
class JumpUnless:
    condition: Condition
    target: int
    where: Where


@dataclass(frozen=True)
class Jump:
    target: int
    where: Where


Instruction = Send | Wait | ExitWhen | End | JumpUnless | Jump


def compile_steps(steps: tuple[Step, ...]) -> tuple[Instruction, ...]:
    out: list[Instruction] = []

    def emit(block: tuple[Step, ...]) -> None:
        for step in block:
            if isinstance(step, Branch):
                jump_at = len(out)
                out.append(JumpUnless(step.condition, -1, step.where))
                emit(step.then)
                if step.otherwise:
                    skip_at = len(out)
                    out.append(Jump(-1, step.where))
                    out[jump_at] = JumpUnless(step.condition, len(out), step.where)
                    emit(step.otherwise)
                    out[skip_at] = Jump(len(out), step.where)
                else:
                    out[jump_at] = JumpUnless(step.condition, len(out), step.where)
            else:
                out.append(step)

    emit(steps)
    return tuple(out)


_programs: dict[tuple[str, int, int], tuple[Instruction, ...]] = {}


def program_of(journey: Journey, version: int) -> tuple[Instruction, ...] | None:
    """The compiled steps an enrollment on `version` runs (None: that version is retired), cached."""
    steps = journey.steps_for(version)
    if steps is None:
        return None
    key = (journey.name, version, id(steps))
    if key not in _programs:
        _programs[key] = compile_steps(steps)
    return _programs[key]


def unreachable(program: tuple[Instruction, ...]) -> list[Instruction]:
    """Instructions no path from the start reaches (e.g. anything after end())."""
    seen: set[int] = set()
    todo = [0]
    while todo:
        pc = todo.pop()
        if pc in seen or pc >= len(program):
            continue
        seen.add(pc)
        instr = program[pc]
        if isinstance(instr, End):
            continue
        if isinstance(instr, Jump):
            todo.append(instr.target)
        elif isinstance(instr, JumpUnless):
            todo += [pc + 1, instr.target]
        else:
            todo.append(pc + 1)
    return [instr for pc, instr in enumerate(program) if pc not in seen and not isinstance(instr, Jump)]


def sends(program: tuple[Instruction, ...]) -> list[Send]:
    return [instr for instr in program if isinstance(instr, Send)]
