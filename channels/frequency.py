"""The cross-journey frequency cap on marketing messages (default: 3 per member per 7 days).

The journeys engine counts a member's recent marketing sends from its ledger; this module only
decides. "Higher priority wins" means: when a member has more marketing candidates in one chunk
than slots left, the slots go to the highest priorities first (ties: the order given, i.e. the
engine's order), and the rest are skipped with reason `frequency_cap`. A message whose priority is
at least `bypass_priority` (when set) is never capped, e.g. a regulator-required notice.
Transactional and staff messages are never capped and do not count.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class FrequencyCap:
    limit: int = 3
    window: timedelta = timedelta(days=7)
    bypass_priority: int | None = None


DEFAULT_CAP = FrequencyCap()


def within_cap(recent_marketing_sends: int, priority: int, cap: FrequencyCap = DEFAULT_CAP) -> bool:
    """May one more marketing message go to someone who got `recent_marketing_sends` in the window?"""
    if cap.bypass_priority is not None and priority >= cap.bypass_priority:
        return True
    return recent_marketing_sends < cap.limit


def allot(
    requests: Sequence[tuple[Hashable, int]], recent_marketing_sends: int, cap: FrequencyCap = DEFAULT_CAP
) -> set[Hashable]:
    """Which of one member's (key, priority) requests get a slot: highest priority first."""
    ranked = sorted(enumerate(requests), key=lambda item: (-item[1][1], item[0]))
    granted: set[Hashable] = set()
    used = recent_marketing_sends
    for _, (key, priority) in ranked:
        if within_cap(used, priority, cap):
            granted.add(key)
            if cap.bypass_priority is None or priority < cap.bypass_priority:
                used += 1
    return granted
