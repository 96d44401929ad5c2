"""A recording adapter (what a provider would have received) and helpers for engine tests."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

from channels.adapters.base import DeliveryResult, DeliveryStatus, OutgoingMessage


class RecordingAdapter:
    """Accepts everything and remembers it; with `path`, also appends ledger ids to a file, so
    several processes can be checked together."""

    provider = "recorder"

    def __init__(self, path: Path | None = None, fail_on_call: int | None = None) -> None:
        self.messages: list[OutgoingMessage] = []
        self.path = path
        self.calls = 0
        self.fail_on_call = fail_on_call
        self._lock = threading.Lock()

    def send(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        with self._lock:
            self.calls += 1
            if self.fail_on_call is not None and self.calls == self.fail_on_call:
                raise Crash("injected crash inside the adapter call")
            self.messages.extend(messages)
            if self.path is not None:
                with open(self.path, "a", encoding="utf-8") as fh:
                    fh.write("".join(f"{m.ledger_id}\n" for m in messages))
                    fh.flush()
                    os.fsync(fh.fileno())
        return [DeliveryResult(m.ledger_id, DeliveryStatus.accepted, f"rec-{m.ledger_id}") for m in messages]

    def ledger_ids(self) -> list[int]:
        return [m.ledger_id for m in self.messages]


class Crash(Exception):
    """Stands in for a process dying at a chosen point."""
