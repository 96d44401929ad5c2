"""A journey's render-context contract (templates/context_contract.py), read from its declarations:
the audience's declared columns or the trigger's properties, and the enricher's `provides`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from audiences.errors import LoyalflowError
from audiences.queries import declared_columns, get_audience
from journeys.dsl import Journey
from journeys.program import compile_steps, sends
from templates.context_contract import ContextContract
from templates.samples import sample_context

# what an event-triggered enrollment's context holds besides the event's properties (journeys/triggers.py)
EVENT_CONTEXT: dict[str, str] = {"event_id": "int", "event_type": "str", "occurred_at": "datetime", "time_zone": "str"}
_PY_KINDS = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict"}


def enricher_keys(enrich: Any) -> dict[str, str]:
    """An enricher's declared keys: `provides` as names (kind "any") or a mapping name -> kind/type."""
    declared = getattr(enrich, "provides", ()) if enrich is not None else ()
    if isinstance(declared, Mapping):
        return {k: _PY_KINDS.get(v, v if isinstance(v, str) else "any") for k, v in declared.items()}
    return {name: "any" for name in declared}


def contract_for(journey: Journey) -> ContextContract | None:
    """The journey's contract; None when its audience cannot be read (reported by check)."""
    event = None
    if journey.trigger is not None:
        event = {**EVENT_CONTEXT, **{k: _PY_KINDS.get(v, "any") for k, v in journey.trigger.properties.items()},
                 **{k: _PY_KINDS.get(type(v), "any") for k, v in journey.trigger.match.items()}}
    if journey.audience is None:
        fields, source = event or {}, f"event {journey.trigger.type!r}" if journey.trigger else "nothing"
    else:
        try:
            fields = declared_columns(get_audience(journey.audience), journey.audience_params)
        except LoyalflowError:
            return None
        source = f"audience {journey.audience!r}"
        if event is not None:  # what every enrollment has, whichever way it entered
            fields = {k: v for k, v in fields.items() if k in event}
    return ContextContract(journey.name, source, fields, enricher_keys(journey.enrich))


def contracts_by_folder(journeys: Iterable[Journey]) -> dict[str, ContextContract]:
    """Template folder -> the contract of the journey whose templates it holds (a journey of the same
    name first, else the first journey sending one of its templates)."""
    found: dict[str, ContextContract] = {}
    journeys = list(journeys)
    users: dict[str, Journey] = {}
    for journey in journeys:
        for version_steps in (journey.steps, *journey.earlier_versions.values()):
            for send in sends(compile_steps(version_steps)):
                for message in send.messages:
                    users.setdefault(message.template.partition("/")[0], journey)
    users.update({j.name: j for j in journeys})
    for folder, journey in users.items():
        contract = contract_for(journey)
        if contract is not None:
            found[folder] = contract
    return found


def context_factory(journeys: Iterable[Journey]) -> Callable[[str, str], dict[str, Any]]:
    """(template folder, locale) -> a sample context with exactly what the journey's contract declares."""
    contracts = contracts_by_folder(journeys)

    def make(folder: str, locale: str) -> dict[str, Any]:
        return sample_context(folder, locale, contract=contracts.get(folder))

    return make
