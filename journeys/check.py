"""`loyalflow check` for journeys: load every journey and report every problem, each at file:line."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from croniter import croniter

from audiences.errors import LoyalflowError
from audiences.queries import get_audience
from journeys.dsl import CHANNELS, ONCE, PURPOSES, WEEKLY, ExitWhen, FieldTime, Journey, Send, Wait, Where
from journeys.program import JumpUnless, compile_steps, unreachable
from journeys.registry import journey_files, load_all
from templates.problems import Problem

_PROBE_NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _at(where: Where, message: str) -> Problem:
    return Problem(where.path, where.line, message)


# what the engine puts in every render context besides the audience fields (journeys/delivery.py)
BASE_CONTEXT = frozenset({"program", "links", "locale", "time_zone", "first_name", "recipient_id"})


class _Templates:
    """What check needs of the template library: does a template exist, for which channel, and
    which variables each of its files uses."""

    def __init__(self, library: object | None) -> None:
        self.library = library

    def variables(self, template: str) -> dict[str, set[str]]:
        """Undeclared Jinja variables per file (all locales) of `journey/step`."""
        from jinja2 import TemplateSyntaxError, meta

        from templates.environment import text_env

        journey, _, step = template.partition("/")
        env = text_env()  # knows the templates' filters (currency, date, percent, ...)
        out: dict[str, set[str]] = {}
        for file in self.library.files_for(journey, step):  # type: ignore[union-attr]
            try:
                out[file.name] = set(meta.find_undeclared_variables(env.parse(file.path.read_text(encoding="utf-8"))))
            except TemplateSyntaxError:
                continue  # reported by the template check with its line
        return out

    def problem(self, template: str, channel: str) -> str | None:
        if self.library is None:
            return None
        journey, _, step = template.partition("/")
        if not step or not self.library.exists(journey, step):  # type: ignore[attr-defined]
            return f"unknown template {template!r}"
        try:
            actual = self.library.channel_of(journey, step)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            return str(exc)
        if actual != channel:
            return f"template {template!r} is a {actual} template, used as {channel}"
        return None


def _field_names(journey: Journey) -> set[str] | None:
    try:
        return set(get_audience(journey.audience).query(_PROBE_NOW, **journey.audience_params).fields)
    except LoyalflowError:
        return None


def _check_steps(journey: Journey, version: int, steps: tuple, fields: set[str] | None, templates: _Templates) -> list[Problem]:
    problems: list[Problem] = []
    program = compile_steps(steps)
    for instr in unreachable(program):
        problems.append(_at(instr.where, f"journey {journey.name!r} v{version}: unreachable step (nothing leads here)"))
    keys: dict[str, Where] = {}
    latest_wait: FieldTime | None = None
    fixed_wait = timedelta(0)
    for instr in program:
        if isinstance(instr, Wait):
            if instr.until is not None:
                latest_wait = instr.until
                if fields is not None and instr.until.field not in fields:
                    problems.append(_at(instr.where, f"wait refers to {instr.until.field!r}, which audience "
                                                     f"{journey.audience!r} does not give"))
            elif instr.duration is not None:
                fixed_wait += instr.duration
        if isinstance(instr, (ExitWhen, JumpUnless)) and fields is not None:
            for name in instr.condition.needs_fields:
                if name not in fields:
                    problems.append(_at(instr.where, f"condition {instr.condition.name!r} needs field {name!r}, "
                                                     f"which audience {journey.audience!r} does not give"))
        if not isinstance(instr, Send):
            continue
        if not instr.messages:
            problems.append(_at(instr.where, "send() names no message"))
        if instr.key in keys:
            problems.append(_at(instr.where, f"step key {instr.key!r} is used twice (also at {keys[instr.key]}); "
                                             "give one of them key=..."))
        keys.setdefault(instr.key, instr.where)
        if instr.purpose is not None and instr.purpose not in PURPOSES:
            problems.append(_at(instr.where, f"unknown purpose {instr.purpose!r}; known: {', '.join(PURPOSES)}"))
        for message in instr.messages:
            if message.channel not in CHANNELS:
                problems.append(_at(instr.where, f"unknown channel {message.channel!r}; known: {', '.join(CHANNELS)}"))
                continue
            issue = templates.problem(message.template, message.channel)
            purpose = instr.purpose or journey.purpose
            if not issue and templates.library is not None:
                declared = templates.library.purpose_of(*message.template.split("/", 1))  # type: ignore[attr-defined]
                if declared != purpose:
                    issue = (f"template {message.template!r} is written as {declared}, but this send's purpose is "
                             f"{purpose}: consent is checked for the send's purpose, so they must agree")
            if issue:
                problems.append(_at(instr.where, issue))
            elif fields is not None and templates.library is not None:
                given = BASE_CONTEXT | fields | set(getattr(journey.enrich, "provides", ()))
                for name, used in sorted(templates.variables(message.template).items()):
                    missing = sorted(used - given)
                    if missing:
                        problems.append(_at(instr.where, f"template {name} uses {', '.join(missing)}, which journey "
                                                         f"{journey.name!r} does not provide (audience "
                                                         f"{journey.audience!r}, enrich, or the base context)"))
        stale = instr.stale or journey.stale
        if isinstance(stale, FieldTime) and latest_wait is not None and latest_wait.field == stale.field \
                and latest_wait.offset > stale.offset:
            problems.append(_at(instr.where, f"the wait before this send ends {latest_wait.describe()}, after its "
                                             f"stale deadline ({stale.describe()}): it would never be sent"))
        if isinstance(stale, timedelta) and fixed_wait > stale:
            problems.append(_at(instr.where, f"the waits before this send add up to {fixed_wait}, beyond its stale "
                                             f"deadline of {stale} after enrollment: it would never be sent"))
        if isinstance(stale, FieldTime) and fields is not None and stale.field not in fields:
            problems.append(_at(instr.where, f"stale deadline refers to {stale.field!r}, which audience "
                                             f"{journey.audience!r} does not give"))
    return problems


def check_journey(journey: Journey, templates: _Templates) -> list[Problem]:
    problems: list[Problem] = []
    where = journey.where
    try:
        get_audience(journey.audience).params(**journey.audience_params)
    except LoyalflowError as exc:
        problems.append(_at(where, f"journey {journey.name!r}: {exc}"))
    fields = _field_names(journey)
    if fields is not None and journey.occurrence_key not in (ONCE, WEEKLY) and journey.occurrence_key not in fields:
        problems.append(_at(where, f"journey {journey.name!r}: occurrence_key {journey.occurrence_key!r} is not a "
                                   f"field of audience {journey.audience!r} ({', '.join(sorted(fields))})"))
    if not croniter.is_valid(journey.schedule):
        problems.append(_at(where, f"journey {journey.name!r}: schedule {journey.schedule!r} is not a valid cron expression"))
    if journey.purpose not in PURPOSES:
        problems.append(_at(where, f"journey {journey.name!r}: unknown purpose {journey.purpose!r}; known: {', '.join(PURPOSES)}"))
    for name in ("holdout_percent", "rollout_percent"):
        value = getattr(journey, name)
        if not 0 <= value <= 100:
            problems.append(_at(where, f"journey {journey.name!r}: {name} must be between 0 and 100, got {value}"))
    if journey.version < 1 or journey.version in journey.earlier_versions:
        problems.append(_at(where, f"journey {journey.name!r}: version {journey.version} must be >= 1 and not "
                                   "also an earlier version"))
    versions = {journey.version: journey.steps, **journey.earlier_versions}
    for version, steps in versions.items():
        problems += _check_steps(journey, version, steps, fields, templates)
    return problems


def check_journeys(files: Iterable[Path] | None = None, library: object | None = None) -> list[Problem]:
    loaded = load_all(list(files) if files is not None else journey_files())
    problems = [Problem(p.path, p.line, p.message) for p in loaded.problems]
    templates = _Templates(library)
    for journey in loaded.journeys.values():
        problems += check_journey(journey, templates)
    return problems
