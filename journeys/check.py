"""`loyalflow check` for journeys: load every journey and report every problem, each at file:line."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from croniter import croniter

from audiences.errors import LoyalflowError
from audiences.events import PROPERTY_NAME, RESERVED_PROPERTIES, TYPE_PATTERN
from audiences.queries import audience_problems, get_audience
from channels.quiet_hours import DEFAULT_RULES, QuietWindow, rules_from_settings
from journeys.check_timing import timing_warnings
from journeys.contract import EVENT_CONTEXT as EVENT_KINDS
from journeys.contract import enricher_keys
from journeys.dsl import ONCE, WEEKLY, ExitWhen, FieldTime, Journey, Send, Wait, Where
from journeys.program import JumpUnless, compile_steps, unreachable
from journeys.registry import journey_files, load_all
from journeys.variants import variant_messages
from templates.context_contract import BASE_CONTEXT as BASE_KINDS
from templates.problems import Problem
from templates.vocabulary import CHANNELS, PURPOSES

_PROBE_NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
JOURNEY_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _at(where: Where, message: str) -> Problem:
    return Problem(where.path, where.line, message)


# what the engine puts in every render context besides the audience fields (journeys/delivery.py)
BASE_CONTEXT = frozenset(BASE_KINDS)
# what an event-triggered enrollment's context holds besides the event's properties (journeys/triggers.py)
EVENT_CONTEXT = frozenset(EVENT_KINDS)


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


def _source(journey: Journey) -> str:
    """What gives the enrollment's fields, for messages: its audience, or its trigger event."""
    if journey.audience is None and journey.trigger is not None:
        return f"event {journey.trigger.type!r} (its declared properties)"
    return f"audience {journey.audience!r}"


def _field_names(journey: Journey) -> set[str] | None:
    event_fields = (set(EVENT_CONTEXT) | set(journey.trigger.properties) | set(journey.trigger.match)
                    if journey.trigger is not None else None)
    if journey.audience is None:
        return event_fields
    try:
        fields = set(get_audience(journey.audience).query(_PROBE_NOW, **journey.audience_params).fields)
    except LoyalflowError:
        return None
    return fields if event_fields is None else fields & event_fields  # what every enrollment has


def _check_trigger(journey: Journey) -> list[Problem]:
    trigger = journey.trigger
    if trigger is None:
        return []
    problems = []
    if not TYPE_PATTERN.fullmatch(trigger.type):
        problems.append(_at(trigger.where, f"event type {trigger.type!r} is not a valid event type (lower-case "
                                           "letters, digits, '_', '.', '-', starting with a letter)"))
    for name, kind in trigger.properties.items():
        if not PROPERTY_NAME.fullmatch(name) or name in RESERVED_PROPERTIES:
            problems.append(_at(trigger.where, f"declared property {name!r} is not a usable property name "
                                               "(a plain identifier, not one loyalflow sets)"))
        if kind not in (bool, int, float, str, list, dict):
            problems.append(_at(trigger.where, f"declared property {name!r} has type {kind!r}; use bool, int, "
                                               "float, str, list or dict"))
    if trigger.max_age is not None and trigger.max_age <= timedelta(0):
        problems.append(_at(trigger.where, f"max_age must be positive, got {trigger.max_age}"))
    return problems


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
                    problems.append(_at(instr.where, f"wait refers to {instr.until.field!r}, which "
                                                     f"{_source(journey)} does not give"))
            elif instr.duration is not None:
                fixed_wait += instr.duration
        if isinstance(instr, (ExitWhen, JumpUnless)) and fields is not None:
            for name in instr.condition.needs_fields:
                if name not in fields:
                    problems.append(_at(instr.where, f"condition {instr.condition.name!r} needs field {name!r}, "
                                                     f"which {_source(journey)} does not give"))
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
        for message in variant_messages(instr):  # A/B variants' templates too
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
                given = BASE_CONTEXT | fields | set(enricher_keys(journey.enrich))  # the context contract
                for name, used in sorted(templates.variables(message.template).items()):
                    missing = sorted(used - given)
                    if missing:
                        problems.append(_at(instr.where, f"template {name} uses {', '.join(missing)}, which journey "
                                                         f"{journey.name!r} does not provide ("
                                                         f"{_source(journey)}, enrich, or the base context)"))
        stale = instr.stale or journey.stale
        if isinstance(stale, FieldTime) and latest_wait is not None and latest_wait.field == stale.field \
                and latest_wait.offset > stale.offset:
            problems.append(_at(instr.where, f"the wait before this send ends {latest_wait.describe()}, after its "
                                             f"stale deadline ({stale.describe()}): it would never be sent"))
        if isinstance(stale, timedelta) and fixed_wait > stale:
            problems.append(_at(instr.where, f"the waits before this send add up to {fixed_wait}, beyond its stale "
                                             f"deadline of {stale} after enrollment: it would never be sent"))
        if isinstance(stale, FieldTime) and fields is not None and stale.field not in fields:
            problems.append(_at(instr.where, f"stale deadline refers to {stale.field!r}, which "
                                             f"{_source(journey)} does not give"))
    return problems


def check_journey(journey: Journey, templates: _Templates) -> list[Problem]:
    problems: list[Problem] = []
    where = journey.where
    try:
        if journey.audience is not None:
            get_audience(journey.audience).params(**journey.audience_params)
    except LoyalflowError as exc:
        problems.append(_at(where, f"journey {journey.name!r}: {exc}"))
    problems += _check_trigger(journey)
    fields = _field_names(journey)
    if fields is not None and journey.audience is not None and journey.occurrence_key not in (ONCE, WEEKLY) \
            and journey.occurrence_key not in fields:
        problems.append(_at(where, f"journey {journey.name!r}: occurrence_key {journey.occurrence_key!r} is not a "
                                   f"field of audience {journey.audience!r} ({', '.join(sorted(fields))})"))
    if journey.schedule is not None and not croniter.is_valid(journey.schedule):
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
    if not JOURNEY_NAME.fullmatch(journey.name):
        problems.append(_at(where, f"journey name {journey.name!r} must be lower-case letters, digits and '_', "
                                   "starting with a letter (it names files, deployments and report rows)"))
    versions = {journey.version: journey.steps, **journey.earlier_versions}
    for version, steps in versions.items():
        problems += _check_steps(journey, version, steps, fields, templates)
    problems += timing_warnings(journey, journey.steps, _quiet_rules())
    return problems


def _quiet_rules() -> dict[str, QuietWindow | None]:
    """The quiet hours the gate will apply (settings), or the defaults when settings are incomplete."""
    from channels.settings import channel_settings

    try:
        s = channel_settings()
        return rules_from_settings(s.quiet_hours_email, s.quiet_hours_sms, s.quiet_hours_push)
    except Exception:  # noqa: BLE001 - settings problems are reported by the commands that need them
        return dict(DEFAULT_RULES)


def check_journeys(files: Iterable[Path] | None = None, library: object | None = None) -> list[Problem]:
    loaded = load_all(list(files) if files is not None else journey_files())
    problems = [Problem(path, line, message) for path, line, message in audience_problems()]
    problems += loaded.problems
    templates = _Templates(library)
    for journey in loaded.journeys.values():
        problems += check_journey(journey, templates)
    return problems


def database_checks(journeys: dict[str, Journey]) -> list[Problem]:
    """What only the database can tell: enrollments a deploy would strand, and program SQL audiences the
    database refuses or whose columns differ from their header. No database yet: nothing to check."""
    from sqlalchemy.exc import SQLAlchemyError

    from audiences.db import make_engine
    from audiences.discovery import database_problems
    from journeys.versions import stranded_problems

    try:
        engine = make_engine(create=False)
    except LoyalflowError:
        return []
    try:
        problems = stranded_problems(journeys, engine)
        try:
            problems += [Problem(path, line, message) for path, line, message in database_problems(engine)]
        except SQLAlchemyError:
            pass
        return problems
    finally:
        engine.dispose()
