"""An adapter that keeps every message in memory, for tests and dry runs (as httpx's MockTransport).

`MemoryAdapter()` accepts everything; `MemoryAdapter(handler)` lets `handler(message)` decide
each outcome (return a DeliveryResult, or None to accept). `requests` lists every message handed
over, in order, so a test can check that nothing went twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from channels.adapters.base import DeliveryResult, DeliveryStatus, OutgoingMessage

Handler = Callable[[OutgoingMessage], DeliveryResult | None]


class MemoryAdapter:
    def __init__(self, handler: Handler | None = None, provider: str = "memory") -> None:
        self.provider = provider
        self.handler = handler
        self.requests: list[OutgoingMessage] = []
        self._lock = threading.Lock()

    def send(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        results = []
        with self._lock:
            for message in messages:
                self.requests.append(message)
                result = self.handler(message) if self.handler is not None else None
                results.append(result or DeliveryResult(message.ledger_id, DeliveryStatus.accepted,
                                                        f"{self.provider}-{message.ledger_id}"))
        return results

    def ledger_ids(self) -> list[int]:
        return [m.ledger_id for m in self.requests]
