"""The render-context contract: what a template of a journey may use, and where each name comes from.

    the audience's declared columns  (or the trigger event's declared properties)
  + the enricher's declared keys     (`@provides(...)` on the journey's `enrich=` function)
  + the base context                 (program, links, locale, time_zone, first_name, recipient_id, ledger_id)

`loyalflow check`, `preview`, `gallery` and the template samples all start from this one value; a
real send's context is built from the same three sources (journeys/delivery.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

BASE_CONTEXT: dict[str, str] = {
    "program": "json", "links": "json", "locale": "str", "time_zone": "str", "first_name": "str",
    "recipient_id": "int", "ledger_id": "int",
}
"""What the engine puts in every render context besides the journey's own fields (journeys/delivery.py)."""


@dataclass(frozen=True)
class ContextContract:
    journey: str
    source: str
    """Where the journey's fields come from, for messages: "audience 'x'" or "event 'purchase'"."""
    fields: dict[str, str] = field(default_factory=dict)
    """The audience's declared columns (or the event's properties), name -> kind."""
    enriched: dict[str, str] = field(default_factory=dict)
    """The enricher's declared keys, name -> kind ("any" when it declares names only)."""

    def names(self) -> frozenset[str]:
        return frozenset(BASE_CONTEXT) | frozenset(self.fields) | frozenset(self.enriched)

    def kinds(self) -> dict[str, str]:
        return {**BASE_CONTEXT, **self.fields, **self.enriched}

    def source_of(self, name: str) -> str:
        if name in self.enriched:
            return "enrich"
        if name in self.fields:
            return self.source
        return "base context" if name in BASE_CONTEXT else "nowhere"
